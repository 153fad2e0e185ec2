package idempotency

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// contract checks the behaviour every Store must have.
func contract(t *testing.T, s Store, expire func(time.Duration)) {
	t.Helper()
	ctx := context.Background()

	_, claimed, err := s.Begin(ctx, "k1", "fp-a")
	if err != nil || !claimed {
		t.Fatalf("first Begin() = claimed %v, %v; want claimed", claimed, err)
	}
	got, claimed, err := s.Begin(ctx, "k1", "fp-a")
	if err != nil || claimed || !got.Pending || got.Fingerprint != "fp-a" {
		t.Fatalf("Begin() while pending = %+v claimed %v, %v; want the pending record", got, claimed, err)
	}
	want := Record{Fingerprint: "fp-a", Status: 201, ContentType: "application/json", Body: []byte(`{"id":"pi_1"}`)}
	if err := s.Complete(ctx, "k1", want); err != nil {
		t.Fatalf("Complete() = %v", err)
	}
	got, claimed, err = s.Begin(ctx, "k1", "fp-a")
	if err != nil || claimed || got.Pending || got.Status != 201 || string(got.Body) != string(want.Body) || got.ContentType != want.ContentType {
		t.Fatalf("Begin() after Complete = %+v claimed %v, %v; want %+v", got, claimed, err, want)
	}

	if _, claimed, _ := s.Begin(ctx, "k2", "fp"); !claimed {
		t.Fatal("Begin(k2) not claimed")
	}
	if err := s.Release(ctx, "k2"); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	if _, claimed, err := s.Begin(ctx, "k2", "fp"); err != nil || !claimed {
		t.Fatalf("Begin() after Release = %v, %v; want claimed", claimed, err)
	}

	// Exactly one of many concurrent requests claims a key.
	var wg sync.WaitGroup
	var mu sync.Mutex
	claims := 0
	for i := range 20 {
		wg.Go(func() {
			_, c, err := s.Begin(ctx, "race", strconv.Itoa(i))
			if err != nil {
				t.Error(err)
			}
			if c {
				mu.Lock()
				claims++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if claims != 1 {
		t.Fatalf("%d concurrent Begin() calls claimed the key, want 1", claims)
	}

	expire(48 * time.Hour)
	if _, claimed, err := s.Begin(ctx, "k1", "fp-a"); err != nil || !claimed {
		t.Fatalf("Begin() after the TTL = %v, %v; want claimed again", claimed, err)
	}
}

func TestMemory(t *testing.T) {
	m := NewMemory(0)
	var offset time.Duration
	var mu sync.Mutex
	m.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	contract(t, m, func(d time.Duration) {
		mu.Lock()
		offset += d
		mu.Unlock()
	})
}

func TestRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = client.Close() }()
	r := NewRedis(client, "idem:", 0)
	contract(t, r, mr.FastForward)
	if !mr.Exists("idem:k1") {
		t.Fatal("key not stored under the prefix")
	}
	if ttl := mr.TTL("idem:k1"); ttl != DefaultTTL {
		t.Fatalf("TTL = %v, want %v", ttl, DefaultTTL)
	}
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A corrupt record is reported, not replayed.
	if err := mr.Set("idem:bad", "not json"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Begin(context.Background(), "bad", "fp"); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("Begin(corrupt) = %v, want ErrCorruptRecord", err)
	}

	// Redis down: every call fails with a wrapped error.
	mr.Close()
	ctx := context.Background()
	if _, _, err := r.Begin(ctx, "x", "fp"); err == nil {
		t.Error("Begin() with Redis down: want error")
	}
	if err := r.Complete(ctx, "x", Record{}); err == nil {
		t.Error("Complete() with Redis down: want error")
	}
	if err := r.Release(ctx, "x"); err == nil {
		t.Error("Release() with Redis down: want error")
	}
	if err := r.Ping(ctx); err == nil {
		t.Error("Ping() with Redis down: want error")
	}
}
