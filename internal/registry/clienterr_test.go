package registry

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// regClient speaks raw HTTP to a registry handler, so tests can send what
// no well-behaved client would.
type regClient struct {
	t    *testing.T
	base string
}

func newRegClient(t *testing.T, root string) *regClient {
	t.Helper()
	h, err := NewHandler(t.Context(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = h.Close()
	})
	return &regClient{t: t, base: srv.URL}
}

type regAnswer struct {
	status int
	code   string // the first OCI error code, if any
	header http.Header
	body   string
}

func (c *regClient) do(method, path string, hdr map[string]string, body string) regAnswer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	// Keep the path as written (no cleaning of "..").
	req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(path, "?")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := regAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		a.code = e.Errors[0].Code
	}
	return a
}

// pushBlob uploads data monolithically and returns its digest.
func (c *regClient) pushBlob(repo string, data []byte) string {
	c.t.Helper()
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	a := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, "")
	if a.status != http.StatusAccepted {
		c.t.Fatalf("start upload: %d %s", a.status, a.body)
	}
	loc := a.header.Get("Location")
	loc = loc[strings.Index(loc, "/v2/"):]
	a = c.do(http.MethodPut, loc+"&digest="+d, map[string]string{"Content-Type": "application/octet-stream"}, string(data))
	if a.status != http.StatusCreated {
		c.t.Fatalf("push blob: %d %s", a.status, a.body)
	}
	return d
}

const manifestType = "application/vnd.oci.image.manifest.v1+json"

// TestClientErrorsAre4xx: requests that are the client's fault get a 4xx
// answer with the OCI error code saying what is wrong, never a 500, and
// nothing invalid is stored.
func TestClientErrorsAre4xx(t *testing.T) {
	root := t.TempDir()
	c := newRegClient(t, root)
	config := c.pushBlob("app", []byte("{}"))
	manifest := func(configDesc, extra string) string {
		return `{"schemaVersion":2,"mediaType":"` + manifestType + `","config":` + configDesc + `,"layers":[]` + extra + `}`
	}
	goodConfig := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + config + `","size":2}`
	up := c.do(http.MethodPost, "/v2/app/blobs/uploads/", nil, "")
	if up.status != http.StatusAccepted {
		t.Fatalf("start upload: %d %s", up.status, up.body)
	}
	upload := up.header.Get("Location")
	upload = upload[strings.Index(upload, "/v2/"):]
	long := strings.Repeat("a", 256)
	subjectOK := `,"subject":{"mediaType":"` + manifestType + `","digest":"sha256:` + strings.Repeat("0", 64) + `","size":2}`

	for _, tc := range []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         string
		status       int
		code         string
	}{
		{"repository name over 255 characters", "GET", "/v2/" + long + "/tags/list", nil, "", 400, "NAME_INVALID"},
		{"long name on upload", "POST", "/v2/" + long + "/blobs/uploads/", nil, "", 400, "NAME_INVALID"},
		{"long name on manifest", "PUT", "/v2/" + long + "/manifests/v1", map[string]string{"Content-Type": manifestType}, manifest(goodConfig, ""), 400, "NAME_INVALID"},
		{"upper case name", "GET", "/v2/App/tags/list", nil, "", 400, "NAME_INVALID"},
		{"malformed Content-Range", "PATCH", upload, map[string]string{"Content-Range": "bytes=0-1", "Content-Type": "application/octet-stream"}, "ab", 400, "BLOB_UPLOAD_INVALID"},
		{"Content-Range with letters", "PATCH", upload, map[string]string{"Content-Range": "0-x", "Content-Type": "application/octet-stream"}, "ab", 400, "BLOB_UPLOAD_INVALID"},
		{"out of order Content-Range", "PATCH", upload, map[string]string{"Content-Range": "5-6", "Content-Type": "application/octet-stream"}, "ab", 416, "RANGE_INVALID"},
		{"null manifest", "PUT", "/v2/app/manifests/v1", map[string]string{"Content-Type": manifestType}, "null", 400, "MANIFEST_INVALID"},
		{"empty object manifest", "PUT", "/v2/app/manifests/v1", map[string]string{"Content-Type": manifestType}, "{}", 400, "MANIFEST_INVALID"},
		{"not JSON", "PUT", "/v2/app/manifests/v1", map[string]string{"Content-Type": manifestType}, "{", 400, "MANIFEST_INVALID"},
		{"negative config size", "PUT", "/v2/app/manifests/v1", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+config+`","size":-5}`, ""), 400, "SIZE_INVALID"},
		{"subject digest with a path", "PUT", "/v2/app/manifests/v2", map[string]string{"Content-Type": manifestType},
			manifest(goodConfig, `,"subject":{"mediaType":"`+manifestType+`","digest":"sha256:../../../etc","size":2}`), 400, "DIGEST_INVALID"},
		{"config digest of the wrong length", "PUT", "/v2/app/manifests/v3", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:abc","size":2}`, ""), 400, "DIGEST_INVALID"},
		{"config media type without a slash", "PUT", "/v2/app/manifests/v4", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"config","digest":"`+config+`","size":2}`, ""), 400, "MANIFEST_INVALID"},
		{"layer with a negative size", "PUT", "/v2/app/manifests/v5", map[string]string{"Content-Type": manifestType},
			`{"schemaVersion":2,"mediaType":"` + manifestType + `","config":` + goodConfig + `,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + config + `","size":-1}]}`, 400, "SIZE_INVALID"},
		{"config size as a string", "PUT", "/v2/app/manifests/v7", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+config+`","size":"2"}`, ""), 400, "SIZE_INVALID"},
		{"config size as a fraction", "PUT", "/v2/app/manifests/v8", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+config+`","size":1.5}`, ""), 400, "SIZE_INVALID"},
		{"config size null", "PUT", "/v2/app/manifests/v9", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+config+`","size":null}`, ""), 400, "SIZE_INVALID"},
		{"config size an object", "PUT", "/v2/app/manifests/v10", map[string]string{"Content-Type": manifestType},
			manifest(`{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+config+`","size":{}}`, ""), 400, "SIZE_INVALID"},
		{"blob with a traversing digest", "GET", "/v2/app/blobs/sha256:..%2F..%2Fetc", nil, "", 400, "DIGEST_INVALID"},
		{"blob with a short digest", "GET", "/v2/app/blobs/sha256:abc", nil, "", 400, "DIGEST_INVALID"},
		{"referrers of a traversing name", "GET", "/v2/app/../../../etc/referrers/sha256:" + strings.Repeat("0", 64), nil, "", 400, "NAME_INVALID"},
		{"referrers with a traversing digest", "GET", "/v2/app/referrers/sha512:..%2F..%2Fetc", nil, "", 400, "DIGEST_INVALID"},
		{"delete of a traversing manifest digest", "DELETE", "/v2/app/manifests/sha256:..%2F..%2Fx", nil, "", 400, "DIGEST_INVALID"},
		{"valid manifest with a subject", "PUT", "/v2/app/manifests/v6", map[string]string{"Content-Type": manifestType}, manifest(goodConfig, subjectOK), 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := c.do(tc.method, tc.path, tc.hdr, tc.body)
			if a.status != tc.status || a.code != tc.code {
				t.Errorf("%s %.60s: got %d %q, want %d %q\n%s", tc.method, tc.path, a.status, a.code, tc.status, tc.code, a.body)
			}
		})
	}
	// Nothing escaped the registry's directory.
	if _, err := os.Stat(filepath.Join(root, "etc")); err == nil {
		t.Errorf("a referrer index was written outside %s/referrers", root)
	}
}

// FuzzCheckManifest: any body is judged without a panic, and a body that
// passes is a schema version 2 JSON object whose descriptors all have a
// valid digest and a non-negative size.
func FuzzCheckManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	for _, seed := range []string{
		"null", "{}", "[]", `{"schemaVersion":2}`,
		`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + d + `","size":2},"layers":[]}`,
		`{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"` + d + `","size":-5}}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:../../etc","size":1}]}`,
		`{"schemaVersion":2,"subject":{"mediaType":"a/b","digest":"` + d + `","size":1e3}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkManifest(body) != nil {
			return
		}
		var m struct {
			SchemaVersion int `json:"schemaVersion"`
			Config        *struct {
				Digest string `json:"digest"`
				Size   int64  `json:"size"`
			} `json:"config"`
			Subject *struct {
				Digest string `json:"digest"`
				Size   int64  `json:"size"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q, which does not decode: %v", body, err)
		}
		if m.SchemaVersion != 2 {
			t.Fatalf("accepted schemaVersion %d", m.SchemaVersion)
		}
		for _, d := range []*struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		}{m.Config, m.Subject} {
			if d != nil && (d.Size < 0 || !validDigest(d.Digest) || strings.Contains(d.Digest, "/")) {
				t.Fatalf("accepted descriptor %+v", d)
			}
		}
	})
}
