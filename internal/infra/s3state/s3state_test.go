package s3state

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gantry-ci/gantry/internal/infra/backend"
	"github.com/gantry-ci/gantry/internal/infra/infratest"
	"github.com/gantry-ci/gantry/internal/infra/tfstate"
)

const key = "app/terraform.tfstate"

func stateJSON(lineage string, serial int, resources ...string) string {
	var rs []string
	for _, r := range resources {
		name, input, _ := strings.Cut(r, "=")
		rs = append(rs, fmt.Sprintf(`{"mode":"managed","type":"terraform_data","name":%q,"provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"schema_version":0,"attributes":{"id":"id-%s","input":{"value":%q,"type":"string"}}}]}`, name, name, input))
	}
	return fmt.Sprintf(`{"version":4,"terraform_version":"1.5.7","serial":%d,"lineage":%q,"outputs":{},"resources":[%s],"check_results":null}`, serial, lineage, strings.Join(rs, ","))
}

func newClient(t *testing.T, s *infratest.S3, bucket string, mod ...func(*backend.Config, *aws.Config)) *Client {
	t.Helper()
	cfg := &backend.Config{Bucket: bucket, Key: key, Region: s.Region, Endpoint: s.Endpoint, UsePathStyle: true}
	ac := s.Config()
	for _, m := range mod {
		m(cfg, &ac)
	}
	c, err := New(context.Background(), cfg, "default", WithAWSConfig(ac))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// history writes three states of one lineage and returns their version IDs,
// oldest first.
func history(t *testing.T, s *infratest.S3, bucket string) []string {
	t.Helper()
	return []string{
		s.Put(t, bucket, key, stateJSON("L1", 1, "a=v1")),
		s.Put(t, bucket, key, stateJSON("L1", 2, "a=v1", "b=v1")),
		s.Put(t, bucket, key, stateJSON("L1", 3, "a=v3", "b=v1")),
	}
}

func TestVersionsAndRollback(t *testing.T) {
	s := infratest.StartS3(t)
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	s.Put(t, "tfstate", key+".other", "not the state") // same prefix, another key
	c := newClient(t, s, "tfstate")
	ctx := context.Background()

	vs, err := c.Versions(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, fmt.Sprintf("%s %d %v %s", v.ID, v.State.Serial, v.Current, v.Changes))
	}
	want := []string{
		ids[2] + " 3 true ~terraform_data.a",
		ids[1] + " 2 false +terraform_data.b",
		ids[0] + " 1 false +terraform_data.a",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Versions =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if vs, err := c.Versions(ctx, 2); err != nil || len(vs) != 2 || vs[1].Changes.String() != "+terraform_data.b" {
		t.Errorf("Versions(limit 2) = %+v, %v; want the newest two with their changes", vs, err)
	}

	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.NewSerial != 4 || p.Current.VersionID != ids[2] {
		t.Errorf("plan: serial %d from %s, want 4 from %s", p.NewSerial, p.Current.VersionID, ids[2])
	}
	wantChanges := tfstate.Changes{Removed: []string{"terraform_data.b"}, Changed: []string{"terraform_data.a"}}
	if !reflect.DeepEqual(p.Changes, wantChanges) {
		t.Errorf("plan changes = %+v, want %+v", p.Changes, wantChanges)
	}
	res, err := c.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the server enforced If-Match: %v", res.Conditional)
	cur, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.VersionID != res.VersionID || cur.State.Serial != 4 || cur.State.Lineage != "L1" {
		t.Errorf("current = %s serial %d lineage %s, want %s serial 4 lineage L1", cur.VersionID, cur.State.Serial, cur.State.Lineage, res.VersionID)
	}
	_, v1, _ := c.Get(ctx, ids[0])
	if d := tfstate.Diff(v1, cur.State); !d.Empty() {
		t.Errorf("restored resources differ from version 1: %v", d)
	}
	after := s.Versions(t, "tfstate", key)
	if len(after) != 4 {
		t.Errorf("versions after rollback = %q, want the 3 old ones and the new one", after)
	}
	for _, id := range ids {
		if _, _, err := c.Get(ctx, id); err != nil {
			t.Errorf("old version %s: %v", id, err)
		}
	}
}

// snapshot is what a refusal must leave as it was.
func snapshot(t *testing.T, s *infratest.S3, bucket string) string {
	t.Helper()
	return strings.Join(s.Versions(t, bucket, key), ",")
}

func TestRefusals(t *testing.T) {
	s := infratest.StartS3(t)
	ctx := context.Background()
	tests := []struct {
		name string
		// setup creates the bucket and returns the target version ID.
		setup  func(t *testing.T, bucket string) string
		client func(*backend.Config, *aws.Config)
		want   error
		say    string
	}{
		{"no versioning", func(t *testing.T, b string) string {
			s.Bucket(t, b, false)
			s.Put(t, b, key, stateJSON("L1", 1, "a=v1"))
			return "null"
		}, nil, ErrNotVersioned, "versioning"},
		{"missing state object", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			return "whatever"
		}, nil, ErrNotFound, "read the current state"},
		{"missing bucket", func(t *testing.T, b string) string { return "whatever" }, nil, ErrNotFound, ""},
		{"missing version", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			history(t, s, b)
			return "no-such-version-id"
		}, nil, ErrNotFound, "no-such-version-id"},
		{"corrupt target", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			id := s.Put(t, b, key, stateJSON("L1", 1, "a=v1")[:40])
			s.Put(t, b, key, stateJSON("L1", 2, "a=v1"))
			return id
		}, nil, ErrCorrupt, "not a valid Terraform state"},
		{"corrupt current", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			id := s.Put(t, b, key, stateJSON("L1", 1, "a=v1"))
			s.Put(t, b, key, "<html>oops</html>")
			return id
		}, nil, ErrCorrupt, "the current state"},
		{"deleted state", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			id := history(t, s, b)[0]
			s.Delete(t, b, key)
			return id
		}, nil, ErrNotFound, ""},
		{"lineage mismatch", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			id := s.Put(t, b, key, stateJSON("OTHER", 7, "x=1"))
			history(t, s, b)
			return id
		}, nil, ErrLineage, "lineage OTHER"},
		{"lockfile held", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			id := history(t, s, b)[0]
			s.Put(t, b, key+".tflock", `{"ID":"4a7c","Operation":"OperationTypeApply","Who":"ann@ci","Version":"1.10.0","Created":"2026-11-30T01:00:00Z"}`)
			return id
		}, nil, ErrLocked, `held by "ann@ci" for OperationTypeApply`},
		{"already current", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			return history(t, s, b)[2]
		}, nil, ErrNothingToDo, ""},
		{"wrong credentials", func(t *testing.T, b string) string {
			s.Bucket(t, b, true)
			return history(t, s, b)[0]
		}, func(_ *backend.Config, ac *aws.Config) {
			ac.Credentials = credentials.NewStaticCredentialsProvider(s.AccessKey, "wrong-secret", "")
		}, ErrAccess, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := fmt.Sprintf("refuse%d", i)
			target := tt.setup(t, bucket)
			var before string
			if tt.want != ErrNotFound || tt.name != "missing bucket" {
				before = snapshot(t, s, bucket)
			}
			var mods []func(*backend.Config, *aws.Config)
			if tt.client != nil {
				mods = append(mods, tt.client)
			}
			c := newClient(t, s, bucket, mods...)
			p, err := c.Prepare(ctx, target)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Prepare error = %v, want %v", err, tt.want)
			}
			var r *RefusedError
			if !errors.As(err, &r) {
				t.Errorf("Prepare error %T is not a *RefusedError", err)
			}
			if p != nil {
				t.Errorf("Prepare returned a plan with its refusal")
			}
			if !strings.Contains(err.Error(), tt.say) {
				t.Errorf("Prepare error = %q, want it to say %q", err, tt.say)
			}
			if before != "" {
				if after := snapshot(t, s, bucket); after != before {
					t.Errorf("versions changed by a refusal: %s, were %s", after, before)
				}
			}
		})
	}
}

func TestApplyRefusesConcurrentWrite(t *testing.T) {
	s := infratest.StartS3(t)
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	c := newClient(t, s, "tfstate")
	ctx := context.Background()
	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	// terraform apply writes serial 4 between the check and the write.
	concurrent := s.Put(t, "tfstate", key, stateJSON("L1", 4, "a=v4", "b=v1"))
	_, err = c.Apply(ctx, p)
	if !errors.Is(err, ErrConcurrent) {
		t.Fatalf("Apply error = %v, want ErrConcurrent", err)
	}
	t.Logf("refusal: %v", err)
	cur, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.VersionID != concurrent {
		t.Errorf("current = %s, want the concurrent write %s kept", cur.VersionID, concurrent)
	}
}

func TestApplyRefusesLockTakenAfterPrepare(t *testing.T) {
	s := infratest.StartS3(t)
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	c := newClient(t, s, "tfstate")
	ctx := context.Background()
	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	s.Put(t, "tfstate", key+".tflock", `{"ID":"1","Who":"bob"}`)
	if _, err := c.Apply(ctx, p); !errors.Is(err, ErrLocked) {
		t.Fatalf("Apply error = %v, want ErrLocked", err)
	}
	if got := s.Versions(t, "tfstate", key); len(got) != 3 {
		t.Errorf("versions = %q, want the 3 untouched", got)
	}
}

// TestLockTable covers the DynamoDB lock table: a held lock refuses the
// rollback, and a rollback sets the state's digest item to the MD5 of the
// content it wrote, as Terraform checks it.
func TestLockTable(t *testing.T) {
	s := infratest.StartS3(t)
	ddb := infratest.StartDynamoDB(t)
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	ddb.Put("locks", map[string]string{"LockID": "tfstate/" + key + "-md5", "Digest": "stale"})
	c := newClient(t, s, "tfstate", func(cfg *backend.Config, _ *aws.Config) {
		cfg.DynamoDBTable, cfg.DynamoDBEndpoint = "locks", ddb.Endpoint
	})
	ctx := context.Background()

	ddb.Put("locks", map[string]string{"LockID": "tfstate/" + key, "Info": `{"ID":"9f1","Operation":"OperationTypePlan","Who":"bob@laptop","Created":"2026-11-30T01:02:03Z"}`})
	_, err := c.Prepare(ctx, ids[0])
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), `dynamodb lock locks LockID=tfstate/app/terraform.tfstate held by "bob@laptop" for OperationTypePlan since 2026-11-30T01:02:03Z`) {
		t.Fatalf("Prepare with a held lock: %v", err)
	}
	if got := ddb.Get("locks", "tfstate/"+key+"-md5")["Digest"]; got != "stale" {
		t.Errorf("digest changed by a refusal: %q", got)
	}
	ddb.Delete("locks", "tfstate/"+key)

	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(p.Data)
	if got, want := ddb.Get("locks", "tfstate/"+key+"-md5")["Digest"], hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest = %q, want %q (MD5 of the restored state)", got, want)
	}
}

// TestApplyWithoutConditionalWrites runs against a server that answers
// If-Match on PUT with 501 NotImplemented (versitygw behind a proxy that
// refuses the header, as older S3-compatible servers do): the rollback
// checks the current version just before writing instead.
func TestApplyWithoutConditionalWrites(t *testing.T) {
	s := infratest.StartS3(t)
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.Header.Get("If-Match") != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>conditional writes are not implemented</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	c := newClient(t, s, "tfstate", func(cfg *backend.Config, _ *aws.Config) { cfg.Endpoint = srv.URL })
	ctx := context.Background()

	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	s.Put(t, "tfstate", key, stateJSON("L1", 4, "a=v4"))
	if _, err := c.Apply(ctx, p); !errors.Is(err, ErrConcurrent) {
		t.Fatalf("Apply after a concurrent write: %v, want ErrConcurrent", err)
	}
	p, err = c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conditional {
		t.Error("Result.Conditional = true, want false: the server refused If-Match")
	}
	cur, err := c.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur.VersionID != res.VersionID || cur.State.Serial != 5 {
		t.Errorf("current = %s serial %d, want %s serial 5", cur.VersionID, cur.State.Serial, res.VersionID)
	}
}

// TestInterruptedRollback cuts the connection half-way through the upload
// of the restored state: the old version stays current, whole.
func TestInterruptedRollback(t *testing.T) {
	s := infratest.StartS3(t)
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			buf := make([]byte, r.ContentLength/2)
			_, _ = io.ReadFull(r.Body, buf)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s.Bucket(t, "tfstate", true)
	ids := history(t, s, "tfstate")
	c := newClient(t, s, "tfstate", func(cfg *backend.Config, ac *aws.Config) {
		cfg.Endpoint = srv.URL
		ac.RetryMaxAttempts = 1
	})
	ctx := context.Background()
	p, err := c.Prepare(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, p); err == nil {
		t.Fatal("Apply through a cut connection: no error")
	}
	direct := newClient(t, s, "tfstate")
	cur, err := direct.Current(ctx)
	if err != nil {
		t.Fatalf("current state after the interrupted rollback: %v", err)
	}
	if cur.VersionID != ids[2] || cur.State.Serial != 3 {
		t.Errorf("current = %s serial %d, want the untouched %s serial 3", cur.VersionID, cur.State.Serial, ids[2])
	}
	if got := s.Versions(t, "tfstate", key); len(got) != 3 {
		t.Errorf("versions = %q, want the 3 old ones", got)
	}
}
