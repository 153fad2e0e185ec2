// Package sbom renders an inventory as a CycloneDX 1.6 JSON software bill
// of materials: the image (or binary, or source tree) as the subject, every
// Go module with its purl and go.sum hash, the Go toolchain, OS packages,
// and the dependency graph main module → modules.
package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/gantry-ci/gantry/internal/inventory"
)

// MediaType is the CycloneDX JSON media type (the OCI artifactType of an
// attached SBOM).
const MediaType = "application/vnd.cyclonedx+json"

// Options tune Generate.
type Options struct {
	// Time is the BOM timestamp (default now).
	Time time.Time
	// ToolVersion is gantry's version, recorded in metadata.tools.
	ToolVersion string
}

// Generate builds the BOM of inv.
func Generate(inv *inventory.Inventory, o Options) *cdx.BOM {
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	bom := cdx.NewBOM()
	// A serial number derived from the subject keeps BOMs of the same
	// image comparable; the timestamp tells generations apart.
	bom.SerialNumber = "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("gantry-sbom:"+inv.Target+"@"+inv.Digest+o.Time.UTC().Format(time.RFC3339))).String()
	subject := subjectComponent(inv)
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.Time.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "gantry", Version: o.ToolVersion,
		}}},
		Component: subject,
	}
	b := &builder{refs: map[string]bool{}, deps: map[string][]string{}}
	var top []string
	for _, bin := range inv.Binaries {
		mainRef := b.binary(bin)
		top = append(top, mainRef)
	}
	for _, p := range inv.Packages {
		ref := b.osPackage(p)
		top = append(top, ref)
	}
	b.depend(subject.BOMRef, top...)
	bom.Components = &b.components
	var deps []cdx.Dependency
	refs := append([]string{subject.BOMRef}, b.order...)
	for _, r := range refs {
		on := b.deps[r]
		if r != subject.BOMRef && !b.refs[r] {
			continue
		}
		d := cdx.Dependency{Ref: r}
		if len(on) > 0 {
			on := slices.Clone(on)
			d.Dependencies = &on
		}
		deps = append(deps, d)
	}
	bom.Dependencies = &deps
	return bom
}

// Encode writes bom as CycloneDX 1.6 JSON.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encode CycloneDX 1.6: %w", err)
	}
	return buf.Bytes(), nil
}

type builder struct {
	components []cdx.Component
	refs       map[string]bool
	order      []string
	deps       map[string][]string
}

func (b *builder) add(c cdx.Component) string {
	if !b.refs[c.BOMRef] {
		b.refs[c.BOMRef] = true
		b.order = append(b.order, c.BOMRef)
		b.components = append(b.components, c)
	}
	return c.BOMRef
}

func (b *builder) depend(from string, to ...string) {
	for _, t := range to {
		if !slices.Contains(b.deps[from], t) {
			b.deps[from] = append(b.deps[from], t)
		}
	}
	if _, ok := b.deps[from]; !ok {
		b.deps[from] = nil
	}
}

// vcsPseudoVersion names a main module built from a checkout ("(devel)")
// by the commit it was built from, as a Go pseudo-version
// (v0.0.0-YYYYMMDDhhmmss-abcdefabcdef), the way syft does; "" without VCS
// stamps.
func vcsPseudoVersion(settings map[string]string) string {
	rev, ts := settings["vcs.revision"], settings["vcs.time"]
	if len(rev) < 12 || ts == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return ""
	}
	return "v0.0.0-" + t.UTC().Format("20060102150405") + "-" + rev[:12]
}

// binary adds a Go binary's main module, toolchain and modules and returns
// the main module's ref.
func (b *builder) binary(bin inventory.Binary) string {
	version := bin.Main.Version
	if version == "(devel)" {
		version = vcsPseudoVersion(bin.Settings)
	}
	props := []cdx.Property{{Name: "gantry:location", Value: bin.Path}}
	if bin.Platform != "" {
		props = append(props, cdx.Property{Name: "gantry:platform", Value: bin.Platform})
	}
	if rev := bin.Settings["vcs.revision"]; rev != "" {
		props = append(props, cdx.Property{Name: "gantry:vcs.revision", Value: rev})
	}
	name := bin.Main.Path
	if name == "" {
		name = path.Base(bin.Path)
	}
	main := cdx.Component{
		BOMRef: "binary:" + bin.Path + "@" + bin.Platform, Type: cdx.ComponentTypeApplication,
		Name: name, Version: version, Properties: &props,
	}
	if bin.Main.Path != "" {
		main.PackageURL = goPURL(bin.Main.Path, version)
	}
	mainRef := b.add(main)
	// A go.mod without a go directive gives no version: no toolchain.
	if f := strings.Fields(bin.GoVersion); len(f) > 0 && strings.TrimPrefix(f[0], "go") != "" {
		v := strings.TrimPrefix(f[0], "go")
		tc := cdx.Component{
			BOMRef: goPURL("stdlib", "go"+v), Type: cdx.ComponentTypeLibrary, Name: "stdlib", Version: "go" + v,
			PackageURL: goPURL("stdlib", "go"+v), Description: "Go standard library and toolchain",
			Properties: &[]cdx.Property{{Name: "gantry:go-toolchain", Value: "go" + v}},
		}
		b.depend(mainRef, b.add(tc))
	}
	for _, m := range bin.Deps {
		b.depend(mainRef, b.add(moduleComponent(m)))
	}
	b.depend(mainRef)
	return mainRef
}

func moduleComponent(m inventory.Module) cdx.Component {
	eff := m.Effective()
	c := cdx.Component{
		BOMRef: goPURL(eff.Path, eff.Version), Type: cdx.ComponentTypeLibrary,
		Name: eff.Path, Version: eff.Version, PackageURL: goPURL(eff.Path, eff.Version),
	}
	var props []cdx.Property
	if m.Replace != nil {
		props = append(props, cdx.Property{Name: "gantry:replaces", Value: m.Path + "@" + m.Version})
	}
	if eff.Sum != "" {
		// go.sum's h1: is base64 of a SHA-256 (over the module's file
		// list); CycloneDX wants hex, so it is recorded as SHA-256 in hex,
		// as syft does, and verbatim as a property.
		props = append(props, cdx.Property{Name: "gantry:go.sum", Value: eff.Sum})
		if h, ok := h1Hex(eff.Sum); ok {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h}}
		}
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func h1Hex(sum string) (string, bool) {
	b64, ok := strings.CutPrefix(sum, "h1:")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return "", false
	}
	return hex.EncodeToString(raw), true
}

// goPURL is pkg:golang/NAMESPACE/NAME@VERSION.
func goPURL(modPath, version string) string {
	segs := strings.Split(modPath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	p := "pkg:golang/" + strings.Join(segs, "/")
	if version != "" {
		p += "@" + url.PathEscape(version)
	}
	return p
}

func (b *builder) osPackage(p inventory.Package) string {
	ns := map[string]string{"deb": "debian", "apk": "alpine"}[p.Type]
	purl := fmt.Sprintf("pkg:%s/%s/%s@%s", p.Type, ns, url.PathEscape(p.Name), url.PathEscape(p.Version))
	var q []string
	if p.Arch != "" {
		q = append(q, "arch="+url.QueryEscape(p.Arch))
	}
	if p.Source != "" && p.Source != p.Name {
		q = append(q, "upstream="+url.QueryEscape(p.Source))
	}
	if len(q) > 0 {
		purl += "?" + strings.Join(q, "&")
	}
	c := cdx.Component{
		BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: purl,
		Properties: &[]cdx.Property{{Name: "gantry:package-db", Value: p.DB}},
	}
	if p.License != "" {
		c.Licenses = &cdx.Licenses{{Expression: p.License}}
	}
	return b.add(c)
}

// subjectComponent describes what the BOM is about: the image by digest,
// the binary or the source tree.
func subjectComponent(inv *inventory.Inventory) *cdx.Component {
	switch inv.Kind {
	case "image":
		name := inv.Name
		c := &cdx.Component{
			BOMRef: "image:" + inv.Digest, Type: cdx.ComponentTypeContainer, Name: name, Version: inv.Digest,
		}
		if alg, hexd, ok := strings.Cut(inv.Digest, ":"); ok && alg == "sha256" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexd}}
			purl := "pkg:oci/" + url.PathEscape(path.Base(name)) + "@" + url.QueryEscape(inv.Digest)
			if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
				purl += "?repository_url=" + url.QueryEscape(name)
			}
			c.PackageURL = purl
		}
		return c
	case "binary":
		return &cdx.Component{BOMRef: "file:" + inv.Target, Type: cdx.ComponentTypeApplication, Name: path.Base(inv.Target)}
	}
	name := inv.Target
	if len(inv.Binaries) > 0 && inv.Binaries[0].Main.Path != "" {
		name = inv.Binaries[0].Main.Path
	}
	return &cdx.Component{BOMRef: "source:" + inv.Target, Type: cdx.ComponentTypeApplication, Name: name}
}
