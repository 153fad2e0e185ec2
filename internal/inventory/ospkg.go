package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// ParseDpkgStatus reads a dpkg status file (var/lib/dpkg/status or a
// distroless status.d entry): paragraphs of "Field: value" lines. Only
// installed packages are returned ("Status: ... installed", or no Status
// field as in status.d).
func ParseDpkgStatus(data []byte, db string) ([]Package, error) {
	paras, err := paragraphs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db, err)
	}
	var out []Package
	for n, para := range paras {
		fields := map[string]string{}
		last := ""
		for _, line := range para {
			if line[0] == ' ' || line[0] == '\t' {
				if last == "" {
					return nil, fmt.Errorf("%s: paragraph %d: continuation line before any field", db, n+1)
				}
				continue // multi-line values (Description, Conffiles) are not needed
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s: paragraph %d: line %q is not \"Field: value\"", db, n+1, line)
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
		if fields["Package"] == "" {
			continue
		}
		if st, ok := fields["Status"]; ok && !strings.HasSuffix(st, " installed") {
			continue
		}
		p := Package{Type: "deb", Name: fields["Package"], Version: fields["Version"], Arch: fields["Architecture"], DB: db}
		if src := fields["Source"]; src != "" {
			// "Source: name (version)" when the source version differs.
			p.Source, _, _ = strings.Cut(src, " ")
		}
		out = append(out, p)
	}
	return out, nil
}

// ParseApkInstalled reads Alpine's lib/apk/db/installed: paragraphs of
// one-letter "K:value" lines (P name, V version, A arch, L licence, o origin).
func ParseApkInstalled(data []byte, db string) ([]Package, error) {
	paras, err := paragraphs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", db, err)
	}
	var out []Package
	for n, para := range paras {
		p := Package{Type: "apk", DB: db}
		for _, line := range para {
			if len(line) < 2 || line[1] != ':' {
				return nil, fmt.Errorf("%s: paragraph %d: line %q is not \"K:value\"", db, n+1, line)
			}
			v := line[2:]
			switch line[0] {
			case 'P':
				p.Name = v
			case 'V':
				p.Version = v
			case 'A':
				p.Arch = v
			case 'L':
				p.License = v
			case 'o':
				p.Source = v
			}
		}
		if p.Name != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// paragraphs splits data at blank lines.
func paragraphs(data []byte) ([][]string, error) {
	var out [][]string
	var cur []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, line)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, sc.Err()
}
