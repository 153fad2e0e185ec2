package store

import (
	"context"
	"strings"
	"testing"
)

// TestLookupCacheUsesIndex (SQLite's alone: its query planner) guards the
// cache lookup against a full scan of every step ever recorded: SQLite
// uses the partial index on cache_key only when the query itself excludes
// empty keys.
func TestLookupCacheUsesIndex(t *testing.T) {
	s := openTest(t, t.TempDir())
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+lookupCacheQuery, "sha256:x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if !strings.Contains(plan.String(), "steps_cache_key") {
		t.Errorf("cache lookup does not use the steps_cache_key index:\n%s", plan.String())
	}
}
