package infratest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// DynamoDB is an in-process stand-in for the DynamoDB lock table of
// Terraform's S3 backend: the JSON protocol's GetItem, PutItem and
// DeleteItem on items keyed by LockID, with the two conditions Terraform
// uses (attribute_not_exists(LockID) to take a lock, Info = :info to
// release it). No DynamoDB-compatible server installs without a JVM or a
// container here; this serves the real AWS SDK clients (gantry's and
// terraform's) over HTTP.
type DynamoDB struct {
	Endpoint string
	mu       sync.Mutex
	items    map[string]map[string]map[string]json.RawMessage // table -> LockID -> item
}

// StartDynamoDB starts the server; it stops when the test ends.
func StartDynamoDB(t testing.TB) *DynamoDB {
	t.Helper()
	d := &DynamoDB{items: map[string]map[string]map[string]json.RawMessage{}}
	srv := httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(srv.Close)
	d.Endpoint = srv.URL
	return d
}

type ddbRequest struct {
	TableName                 string                                `json:"TableName"`
	Key                       map[string]map[string]json.RawMessage `json:"Key"`
	Item                      map[string]json.RawMessage            `json:"Item"`
	ConditionExpression       string                                `json:"ConditionExpression"`
	ExpressionAttributeValues map[string]json.RawMessage            `json:"ExpressionAttributeValues"`
}

func lockID(attrs map[string]json.RawMessage) string {
	var v struct{ S string }
	_ = json.Unmarshal(attrs["LockID"], &v)
	return v.S
}

func (d *DynamoDB) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	var req ddbRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		ddbError(w, "SerializationException", err.Error())
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	table := d.items[req.TableName]
	if table == nil {
		table = map[string]map[string]json.RawMessage{}
		d.items[req.TableName] = table
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	switch op {
	case "GetItem":
		key := map[string]json.RawMessage{}
		for k, v := range req.Key {
			b, _ := json.Marshal(v)
			key[k] = b
		}
		item, ok := table[lockID(key)]
		if !ok {
			_, _ = w.Write([]byte(`{}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Item": item})
	case "PutItem":
		id := lockID(req.Item)
		if req.ConditionExpression == "attribute_not_exists(LockID)" && table[id] != nil {
			ddbError(w, "ConditionalCheckFailedException", "The conditional request failed")
			return
		}
		table[id] = req.Item
		_, _ = w.Write([]byte(`{}`))
	case "DeleteItem":
		key := map[string]json.RawMessage{}
		for k, v := range req.Key {
			b, _ := json.Marshal(v)
			key[k] = b
		}
		id := lockID(key)
		if req.ConditionExpression == "Info = :info" {
			if item := table[id]; item == nil || string(compact(item["Info"])) != string(compact(req.ExpressionAttributeValues[":info"])) {
				ddbError(w, "ConditionalCheckFailedException", "The conditional request failed")
				return
			}
		}
		delete(table, id)
		_, _ = w.Write([]byte(`{}`))
	case "DescribeTable":
		_ = json.NewEncoder(w).Encode(map[string]any{"Table": map[string]any{"TableName": req.TableName, "TableStatus": "ACTIVE"}})
	default:
		ddbError(w, "UnknownOperationException", "operation "+op+" is not served")
	}
}

func compact(b json.RawMessage) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

func ddbError(w http.ResponseWriter, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + typ, "message": msg})
}

// Put stores an item of string attributes.
func (d *DynamoDB) Put(table string, attrs map[string]string) {
	item := map[string]json.RawMessage{}
	for k, v := range attrs {
		b, _ := json.Marshal(map[string]string{"S": v})
		item[k] = b
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.items[table] == nil {
		d.items[table] = map[string]map[string]json.RawMessage{}
	}
	d.items[table][lockID(item)] = item
}

// Get returns an item's string attributes, or nil.
func (d *DynamoDB) Get(table, id string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	item := d.items[table][id]
	if item == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range item {
		var s struct{ S string }
		_ = json.Unmarshal(v, &s)
		out[k] = s.S
	}
	return out
}

// Delete removes an item.
func (d *DynamoDB) Delete(table, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.items[table], id)
}
