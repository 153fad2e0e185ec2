package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestMemorySendReceiveDelete(t *testing.T) {
	ctx := context.Background()
	q := NewMemory(time.Hour)
	if err := q.Send(ctx, []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, []byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	got, err := q.Receive(ctx, 1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("Receive() = %v, %v; want 1 message", got, err)
	}
	if string(got[0].Body) != "a" || got[0].ReceiveCount != 1 {
		t.Fatalf("got %q count %d, want \"a\" count 1", got[0].Body, got[0].ReceiveCount)
	}
	// "a" is now invisible; "b" is next.
	got2, err := q.Receive(ctx, 10, 0)
	if err != nil || len(got2) != 1 || string(got2[0].Body) != "b" {
		t.Fatalf("second Receive() = %v, %v; want [b]", got2, err)
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle); err != nil {
		t.Fatalf("Delete() = %v", err)
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle); err == nil {
		t.Fatal("second Delete() of the same receipt: want error")
	}
	if q.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", q.Len())
	}
	none, err := q.Receive(ctx, 10, 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("Receive() with everything in flight = %v, %v; want none", none, err)
	}
}

func TestMemoryVisibilityTimeoutRedelivers(t *testing.T) {
	ctx := context.Background()
	q := NewMemory(time.Millisecond)
	if err := q.Send(ctx, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	first, err := q.Receive(ctx, 1, 0)
	if err != nil || len(first) != 1 {
		t.Fatalf("Receive() = %v, %v", first, err)
	}
	// Not deleted: it reappears once the visibility timeout passes.
	again, err := q.Receive(ctx, 1, 10*time.Second)
	if err != nil || len(again) != 1 {
		t.Fatalf("Receive() after timeout = %v, %v", again, err)
	}
	if again[0].ReceiveCount != 2 || again[0].ID != first[0].ID {
		t.Fatalf("redelivery = %+v, want same ID, count 2", again[0])
	}
	if err := q.Delete(ctx, first[0].ReceiptHandle); err == nil {
		t.Fatal("Delete() with a stale receipt handle: want error")
	}
}

func TestMemoryDelayAndLongPoll(t *testing.T) {
	ctx := context.Background()
	q := NewMemory(0)
	if err := q.Send(ctx, []byte("later"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Receive(ctx, 1, 0); len(got) != 0 {
		t.Fatalf("delayed message visible early: %v", got)
	}
	if err := q.Send(ctx, []byte("soon"), 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got, err := q.Receive(ctx, 10, 10*time.Second)
	if err != nil || len(got) != 1 || string(got[0].Body) != "soon" {
		t.Fatalf("Receive() = %v, %v; want [soon]", got, err)
	}

	// A long poll wakes up when another goroutine sends.
	var wg sync.WaitGroup
	var polled []Message
	var pollErr error
	wg.Go(func() {
		polled, pollErr = q.Receive(ctx, 1, 30*time.Second)
	})
	if err := q.Send(ctx, []byte("wake"), 0); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if pollErr != nil || len(polled) != 1 || string(polled[0].Body) != "wake" {
		t.Fatalf("long poll = %v, %v; want [wake]", polled, pollErr)
	}
}

func TestMemoryCancelled(t *testing.T) {
	q := NewMemory(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Receive(ctx, 0, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive() = %v, want context.Canceled", err)
	}
	if err := q.Send(ctx, nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send() = %v, want context.Canceled", err)
	}
	if err := q.Delete(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete() = %v, want context.Canceled", err)
	}
}
