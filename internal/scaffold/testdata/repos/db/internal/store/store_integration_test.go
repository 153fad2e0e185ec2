//go:build integration

package store

import (
	"context"
	"os"
	"testing"
)

func TestSaveAndRead(t *testing.T) {
	db, rd := os.Getenv("DATABASE_URL"), os.Getenv("REDIS_URL")
	if db == "" || rd == "" {
		t.Fatal("DATABASE_URL and REDIS_URL must be set (gantry's postgres and redis services set them)")
	}
	ctx := context.Background()
	if err := Save(ctx, db, rd, "ord_1", "book"); err != nil {
		t.Fatal(err)
	}
	got, err := Item(ctx, rd, "ord_1")
	if err != nil {
		t.Fatal(err)
	}
	if got != "book" {
		t.Errorf("got %q, want book", got)
	}
	if err := Save(ctx, "postgres://127.0.0.1:1/none", rd, "x", "y"); err == nil {
		t.Error("Save with an unreachable database: got nil error")
	}
	if _, err := Item(ctx, "not-a-url", "x"); err == nil {
		t.Error("Item with a bad URL: got nil error")
	}
	if err := Save(ctx, db, "not-a-url", "x", "y"); err == nil {
		t.Error("Save with a bad redis URL: got nil error")
	}
	if _, err := Item(ctx, rd, "missing"); err == nil {
		t.Error("Item of a missing order: got nil error")
	}
}
