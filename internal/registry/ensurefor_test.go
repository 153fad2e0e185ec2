package registry

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushRandom pushes a random image as repo:v1 and returns it by digest.
func pushRandom(t *testing.T, repo string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return repo + "@" + d.String()
}

// TestEnsureForRedirectsOnlyOwnAddresses: a user's own registry on a
// loopback address is used as it is; only references to an address the
// embedded registry served on are redirected to where it serves now.
func TestEnsureForRedirectsOnlyOwnAddresses(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()

	// The user's own registry on localhost.
	own := httptest.NewServer(ggcrregistry.New())
	defer own.Close()
	ownHost := strings.TrimPrefix(own.URL, "http://")
	ownImage := pushRandom(t, ownHost+"/team/app")
	localhostImage := "localhost:" + ownHost[strings.LastIndex(ownHost, ":")+1:] + "/team/app" + ownImage[strings.Index(ownImage, "@"):]

	// The embedded registry ran on one address, then stopped; that
	// address is now taken, so it comes back on another.
	first, stop, err := Ensure(ctx, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	embeddedImage := pushRandom(t, first+"/examplepay/payment-service")
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	squat, err := lc.Listen(ctx, "tcp", first)
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()

	for _, tc := range []struct {
		name, image string
		env         []string
		// want is the reference returned; "now" stands for the embedded
		// registry's current address.
		want string
	}{
		{"user's registry on 127.0.0.1", ownImage, nil, ownImage},
		{"user's registry on localhost", localhostImage, nil, localhostImage},
		{"user's registry while a run hands steps the embedded one", ownImage, []string{EnvAddr + "=127.0.0.1:1"}, ownImage},
		{"embedded registry's earlier address", embeddedImage, nil, "now" + embeddedImage[len(first):]},
		{"remote registry", "registry.example.com/app@sha256:" + strings.Repeat("a", 64), nil, "registry.example.com/app@sha256:" + strings.Repeat("a", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, stop, err := EnsureFor(ctx, state, tc.env, nil, tc.image)
			if err != nil {
				t.Fatal(err)
			}
			defer stop(ctx)
			want := tc.want
			if strings.HasPrefix(want, "now/") {
				host, _, _ := strings.Cut(got, "/")
				if host == first {
					t.Fatalf("embedded registry restarted on its old, taken address %s", first)
				}
				want = host + want[len("now"):]
				ref, err := name.ParseReference(got, name.Insecure)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := remote.Head(ref); err != nil {
					t.Errorf("redirected image %s is not there: %v", got, err)
				}
			}
			if got != want {
				t.Errorf("EnsureFor(%s) = %s, want %s", tc.image, got, want)
			}
		})
	}
}
