//go:build integration

package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/examplepay/payment-service/internal/store/storetest"
)

func TestPostgresContract(t *testing.T) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set: skipping the PostgreSQL store tests (run scripts/integration-env.sh to start PostgreSQL)")
	}
	ctx := context.Background()
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 2 { // migrating twice is a no-op
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate() #%d = %v", i+1, err)
		}
	}
	storetest.RunContract(t, s)
	st := s.PoolStats()
	if st.MaxConns < 1 || st.AcquireCount < 1 {
		t.Fatalf("PoolStats() = %+v, want a used pool", st)
	}
}
