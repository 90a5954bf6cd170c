package clusterres

import "fmt"

// Namespace is a v1 Namespace.
type Namespace struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
}

// OperatorGroup is operators.coreos.com/v1 OperatorGroup. An empty
// TargetNamespaces (with the field omitted) selects all namespaces.
type OperatorGroup struct {
	TypeMeta
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		TargetNamespaces []string `json:"targetNamespaces,omitempty"`
		// UpgradeStrategy is left to its default.
	} `json:"spec"`
}

// Subscription is operators.coreos.com/v1alpha1 Subscription.
type Subscription struct {
	TypeMeta
	Metadata ObjectMeta       `json:"metadata"`
	Spec     SubscriptionSpec `json:"spec"`
}

// SubscriptionSpec holds the fields airlock sets.
type SubscriptionSpec struct {
	Channel             string `json:"channel"`
	Name                string `json:"name"` // the package
	Source              string `json:"source"`
	SourceNamespace     string `json:"sourceNamespace"`
	InstallPlanApproval string `json:"installPlanApproval"`
	StartingCSV         string `json:"startingCSV,omitempty"`
}

// InstallOptions describe the objects that install one operator.
type InstallOptions struct {
	Package         string
	Channel         string
	StartingCSV     string
	Namespace       string
	Approval        string // Automatic or Manual
	CatalogSource   string
	SourceNamespace string // default openshift-marketplace
	// AllNamespaces makes the OperatorGroup target every namespace;
	// otherwise it targets only Namespace (OwnNamespace).
	AllNamespaces bool
}

// InstallObjects returns the Namespace, OperatorGroup and Subscription a
// user applies to install an operator from a (mirrored) catalog.
func InstallObjects(o InstallOptions) (Namespace, OperatorGroup, Subscription, error) {
	var ns Namespace
	var og OperatorGroup
	var sub Subscription
	if errs := validateLabel(o.Namespace); errs != "" {
		return ns, og, sub, fmt.Errorf("namespace %q: %s", o.Namespace, errs)
	}
	if o.Package == "" || o.Channel == "" {
		return ns, og, sub, fmt.Errorf("install %s: package and channel are required", o.Package)
	}
	if errs := validateName(o.CatalogSource); errs != "" {
		return ns, og, sub, fmt.Errorf("catalog source %q: %s", o.CatalogSource, errs)
	}
	switch o.Approval {
	case "Automatic", "Manual":
	case "":
		o.Approval = "Automatic"
	default:
		return ns, og, sub, fmt.Errorf("approval %q: want Automatic or Manual", o.Approval)
	}
	if o.SourceNamespace == "" {
		o.SourceNamespace = MarketplaceNamespace
	}
	ns = Namespace{TypeMeta: TypeMeta{"v1", "Namespace"}, Metadata: ObjectMeta{Name: o.Namespace}}
	og = OperatorGroup{TypeMeta: TypeMeta{"operators.coreos.com/v1", "OperatorGroup"}, Metadata: ObjectMeta{Name: o.Namespace, Namespace: o.Namespace}}
	if !o.AllNamespaces {
		og.Spec.TargetNamespaces = []string{o.Namespace}
	}
	sub = Subscription{
		TypeMeta: TypeMeta{"operators.coreos.com/v1alpha1", "Subscription"},
		Metadata: ObjectMeta{Name: o.Package, Namespace: o.Namespace},
		Spec: SubscriptionSpec{Channel: o.Channel, Name: o.Package, Source: o.CatalogSource, SourceNamespace: o.SourceNamespace,
			InstallPlanApproval: o.Approval, StartingCSV: o.StartingCSV},
	}
	return ns, og, sub, nil
}
