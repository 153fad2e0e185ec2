package admission

import (
	"encoding/json"
)

// normalizeJSON decodes a JSON document into JSON's Go types.
func normalizeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}
