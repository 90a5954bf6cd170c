package clusterres

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"
)

// YAML marshals objects as one multi-document YAML stream, every document
// preceded by "---" as oc writes them. Map keys come out sorted, so the
// output is deterministic.
func YAML[T any](objs ...T) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("marshalling %T: %w", o, err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
