package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decode reads a predicate; unknown fields are allowed (later versions
// may add figures) but the verdict must be one gantry writes.
func decode(data []byte) (*Predicate, error) {
	var p Predicate
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	if p.Verdict != Pass && p.Verdict != AllowedFailure && p.Verdict != Fail {
		return nil, fmt.Errorf("predicate: verdict %q", p.Verdict)
	}
	return &p, nil
}
