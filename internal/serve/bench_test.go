package serve

import (
	"context"
	"testing"
)

// BenchmarkStatusOverSocket measures one Deployer call through the client,
// the socket, the peer check and the API (the deployer answers at once).
func BenchmarkStatusOverSocket(b *testing.B) {
	s := startServer(b, false)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.c.Status(ctx, "staging"); err != nil {
			b.Fatal(err)
		}
	}
}
