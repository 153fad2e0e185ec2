package load

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync"

	"k8s.io/client-go/util/jsonpath"
)

type compiledCheck struct {
	name   string
	status int
	json   *jsonpath.JSONPath
	mu     *sync.Mutex // a JSONPath keeps state while it evaluates
	equals any
}

func compileCheck(ch Check) (compiledCheck, error) {
	c := compiledCheck{name: checkName(ch), status: ch.Status, equals: ch.Equals}
	if ch.Status == 0 && ch.JSON == "" {
		return c, fmt.Errorf("a check needs status or json")
	}
	if ch.JSON != "" {
		jp := jsonpath.New(c.name)
		if err := jp.Parse(ch.JSON); err != nil {
			return c, fmt.Errorf("json %q: %w", ch.JSON, err)
		}
		c.json = jp
		c.mu = &sync.Mutex{}
	}
	return c, nil
}

// run evaluates the check. doc is the decoded JSON body (nil if the body was
// not JSON).
func (c compiledCheck) run(status int, doc any) bool {
	if c.status != 0 && status != c.status {
		return false
	}
	if c.json == nil {
		return true
	}
	if doc == nil {
		return false
	}
	c.mu.Lock()
	res, err := c.json.FindResults(doc)
	c.mu.Unlock()
	if err != nil || len(res) == 0 || len(res[0]) == 0 {
		return false
	}
	if c.equals == nil {
		return true
	}
	return looseEqual(res[0][0].Interface(), c.equals)
}

// looseEqual compares a decoded JSON value with a YAML value: numbers by
// value, everything else by its string form.
func looseEqual(got, want any) bool {
	gf, gok := toFloat(got)
	wf, wok := toFloat(want)
	if gok && wok {
		return gf == wf
	}
	if reflect.DeepEqual(got, want) {
		return true
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}
