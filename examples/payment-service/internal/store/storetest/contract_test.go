package storetest

import (
	"testing"

	"github.com/examplepay/payment-service/internal/store"
)

// The contract must hold for the reference implementation.
func TestContractOnMemory(t *testing.T) {
	RunContract(t, store.NewMemory())
}
