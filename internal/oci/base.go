package oci

import (
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Nonroot is the user and group of the base image, as in distroless.
const Nonroot = 65532

// BaseSources are the host files the local base is assembled from.
type BaseSources struct {
	// CACerts is a PEM bundle; default /etc/ssl/certs/ca-certificates.crt
	// (Debian's ca-certificates).
	CACerts string
	// Zoneinfo is a tzdata tree; default /usr/share/zoneinfo (Debian's
	// tzdata). Missing: the image has no zoneinfo.
	Zoneinfo string
}

func (s BaseSources) withDefaults() BaseSources {
	if s.CACerts == "" {
		s.CACerts = "/etc/ssl/certs/ca-certificates.crt"
	}
	if s.Zoneinfo == "" {
		s.Zoneinfo = "/usr/share/zoneinfo"
	}
	return s
}

// BaseLayer assembles the distroless-style base layer: passwd and group
// with root and nonroot (65532), the CA bundle, tzdata, /tmp (1777) and
// /home/nonroot; no shell and no package manager. The same sources and
// mtime give the same layer digest.
func BaseLayer(src BaseSources, mtime time.Time) (v1.Layer, error) {
	src = src.withDefaults()
	l := newLayer(mtime)
	l.add(entry{name: "/etc/passwd", mode: 0o644, data: []byte(
		"root:x:0:0:root:/root:/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")})
	l.add(entry{name: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")})
	l.add(entry{name: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")})
	l.add(entry{name: "/etc/os-release", mode: 0o644, data: []byte("PRETTY_NAME=\"gantry static (distroless-style)\"\nID=gantry-static\n")})
	ca, err := os.ReadFile(src.CACerts)
	if err != nil {
		return nil, fmt.Errorf("base image: read CA certificates (install Debian's ca-certificates): %w", err)
	}
	l.add(entry{name: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	if fi, err := os.Stat(src.Zoneinfo); err == nil && fi.IsDir() {
		if err := l.addTree(src.Zoneinfo, "/usr/share/zoneinfo", "posix", "right"); err != nil {
			return nil, fmt.Errorf("base image: add tzdata: %w", err)
		}
	}
	l.add(entry{name: "/tmp", dir: true, mode: 0o1777})
	l.add(entry{name: "/root", dir: true, mode: 0o700})
	l.add(entry{name: "/home/nonroot", dir: true, mode: 0o700, uid: Nonroot, gid: Nonroot})
	return l.layer()
}
