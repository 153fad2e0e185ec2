package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Client errors are answered here, before a request reaches distribution,
// which answers several of them with 500 or accepts what the OCI specs
// forbid: every request naming a repository has its name checked, every
// chunk its Content-Range, every manifest pushed its descriptors.

// maxNameLen is the longest repository name distribution stores.
const maxNameLen = 255

var (
	// route splits /v2/<name>/<kind>/<rest>; name is greedy so that a
	// repository with a component called "blobs" still parses.
	route = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs|tags|referrers)/(.*)$`)
	// nameRE is the repository name grammar of the OCI distribution spec.
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	// digestRE is the digest grammar of the OCI image spec.
	digestRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	// mediaTypeRE is RFC 6838's type/subtype, as the OCI image spec asks
	// of descriptors.
	mediaTypeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)
	// contentRangeRE is a chunk's Content-Range: <start>-<end>.
	contentRangeRE = regexp.MustCompile(`^[0-9]{1,19}-[0-9]{1,19}$`)
	hexRE          = regexp.MustCompile(`^[a-f0-9]+$`)
)

// requestError is a client error with its OCI error code.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.code + ": " + e.msg }

func nameInvalid(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, "NAME_INVALID", fmt.Sprintf(format, args...)}
}

// checkName checks a repository name.
func checkName(name string) *requestError {
	switch {
	case len(name) > maxNameLen:
		return nameInvalid("repository name is %d characters long; at most %d are allowed", len(name), maxNameLen)
	case !nameRE.MatchString(name):
		return nameInvalid("repository name %q is invalid: lower-case letters and digits, in components separated by /, with . _ __ or - between them", name)
	}
	return nil
}

// validDigest reports whether d is a digest per the OCI image spec, with
// the encoded part of the registered algorithms checked.
func validDigest(d string) bool {
	if len(d) > 256 || !digestRE.MatchString(d) {
		return false
	}
	alg, enc, _ := strings.Cut(d, ":")
	switch alg {
	case "sha256":
		return len(enc) == 64 && hexRE.MatchString(enc)
	case "sha512":
		return len(enc) == 128 && hexRE.MatchString(enc)
	}
	return true
}

// checkRequest checks what can be checked of a request without its body.
func checkRequest(r *http.Request) *requestError {
	m := route.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return nil
	}
	name, kind, rest := m[1], m[2], m[3]
	if err := checkName(name); err != nil {
		return err
	}
	switch {
	case kind == "referrers", kind == "manifests" && strings.Contains(rest, ":"),
		kind == "blobs" && rest != "uploads" && !strings.HasPrefix(rest, "uploads/"):
		if !validDigest(rest) {
			return &requestError{http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%q is not a digest", rest)}
		}
	case kind == "blobs" && strings.HasPrefix(rest, "uploads/") && r.Method == http.MethodPatch:
		if cr := r.Header.Get("Content-Range"); cr != "" && !contentRangeRE.MatchString(cr) {
			return &requestError{http.StatusBadRequest, "BLOB_UPLOAD_INVALID", fmt.Sprintf("Content-Range %q is not <start>-<end>", cr)}
		}
	}
	return nil
}

// descriptor is a content descriptor as pushed, before any parsing that
// would lose what is wrong with it.
type descriptor struct {
	MediaType *string         `json:"mediaType"`
	Digest    *string         `json:"digest"`
	Size      json.RawMessage `json:"size"`
}

// manifestDoc is the part of an image manifest or index that is checked.
type manifestDoc struct {
	SchemaVersion *int          `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	ArtifactType  string        `json:"artifactType"`
	Config        *descriptor   `json:"config"`
	Layers        []*descriptor `json:"layers"`
	Manifests     []*descriptor `json:"manifests"`
	Subject       *descriptor   `json:"subject"`
}

func manifestInvalid(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf(format, args...)}
}

// checkManifest checks a manifest or index as pushed: a JSON object of
// schema version 2 whose descriptors have a media type, a digest and a
// size of the right syntax.
func checkManifest(body []byte) *requestError {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return manifestInvalid("a manifest is a JSON object")
	}
	var m manifestDoc
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return manifestInvalid("manifest is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return manifestInvalid("manifest has data after its JSON object")
	}
	if m.SchemaVersion == nil || *m.SchemaVersion != 2 {
		return manifestInvalid("schemaVersion must be 2")
	}
	for field, v := range map[string]string{"mediaType": m.MediaType, "artifactType": m.ArtifactType} {
		if v != "" && !mediaTypeRE.MatchString(v) {
			return manifestInvalid("%s %q is not a media type (type/subtype)", field, v)
		}
	}
	check := func(where string, d *descriptor) *requestError {
		if d == nil {
			return manifestInvalid("%s is null", where)
		}
		switch {
		case d.MediaType == nil || !mediaTypeRE.MatchString(*d.MediaType):
			return manifestInvalid("%s: mediaType %s is not a media type (type/subtype)", where, quoted(d.MediaType))
		case d.Digest == nil || !validDigest(*d.Digest):
			return &requestError{http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("%s: digest %s is not a digest (algorithm:encoded)", where, quoted(d.Digest))}
		case d.Size == nil || string(d.Size) == "null":
			return &requestError{http.StatusBadRequest, "SIZE_INVALID", where + ": size is missing"}
		}
		// A JSON number, not a string holding one ("5"), and a whole one.
		n, err := strconv.ParseInt(string(d.Size), 10, 64)
		if err != nil || n < 0 {
			shown := string(d.Size)
			if len(shown) > 40 {
				shown = shown[:40] + "..."
			}
			return &requestError{http.StatusBadRequest, "SIZE_INVALID", fmt.Sprintf("%s: size %s is not a non-negative integer", where, shown)}
		}
		return nil
	}
	if m.Config != nil {
		if err := check("config", m.Config); err != nil {
			return err
		}
	}
	for i, d := range m.Layers {
		if err := check(fmt.Sprintf("layers[%d]", i), d); err != nil {
			return err
		}
	}
	for i, d := range m.Manifests {
		if err := check(fmt.Sprintf("manifests[%d]", i), d); err != nil {
			return err
		}
	}
	if m.Subject != nil {
		if err := check("subject", m.Subject); err != nil {
			return err
		}
	}
	return nil
}

func quoted(s *string) string {
	if s == nil {
		return "(missing)"
	}
	return fmt.Sprintf("%q", *s)
}
