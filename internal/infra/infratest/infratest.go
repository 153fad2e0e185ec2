// Package infratest starts the peers of the infra tests: a versitygw S3
// server with versioning (POSIX backend in a temporary directory) and the
// terraform v1.5.7 binary, both built once into gantry's tool cache by
// scripts/deps.sh. A missing peer skips the test, or fails it under CI=true
// (internal/testenv).
package infratest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gantry-ci/gantry/internal/testenv"
)

// The pinned peer versions (scripts/deps.sh installs the same).
const (
	VersityGWVersion = "v1.8.0"
	TerraformVersion = "v1.5.7"
)

// ToolCache is where scripts/deps.sh puts cached tools:
// $GANTRY_TOOL_CACHE, else ~/.cache/gantry/tools.
func ToolCache() string {
	if d := os.Getenv("GANTRY_TOOL_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "gantry", "tools")
}

// cachedTool returns DIR/NAME@VERSION/NAME or ends the test.
func cachedTool(t testing.TB, name, pkg, version string) string {
	t.Helper()
	p := filepath.Join(ToolCache(), name+"@"+version, name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	testenv.Missing(t, name+"@"+version, "scripts/deps.sh builds it into "+filepath.Dir(p)+" (go install "+pkg+"@"+version+")")
	return ""
}

// Terraform returns the path of terraform v1.5.7 (not any terraform: the
// backend options the tests use are 1.5's): the tool cache's, else the
// terraform on PATH or in GOPATH/bin when it is that version.
func Terraform(t testing.TB) string {
	t.Helper()
	p := filepath.Join(ToolCache(), "terraform@"+TerraformVersion, "terraform")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	var found []string
	if p, err := exec.LookPath("terraform"); err == nil {
		found = append(found, p)
	}
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		found = append(found, filepath.Join(strings.TrimSpace(string(gp)), "bin", "terraform"))
	}
	for _, p := range found {
		cmd := exec.Command(p, "version")
		cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
		out, err := cmd.Output()
		if err == nil && strings.HasPrefix(string(out), "Terraform "+TerraformVersion+"\n") {
			return p
		}
	}
	return cachedTool(t, "terraform", "github.com/hashicorp/terraform", TerraformVersion)
}

// S3 is a running versitygw.
type S3 struct {
	Endpoint          string
	AccessKey, Secret string
	Region            string
	// Data is the POSIX backend's directory: Data/BUCKET holds the objects.
	Data string
}

// StartS3 starts versitygw on a free local port with versioning; it is
// stopped (and waited for) when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := cachedTool(t, "versitygw", "github.com/versity/versitygw/cmd/versitygw", VersityGWVersion)
	dir := t.TempDir()
	s := &S3{AccessKey: "gantrytestkey", Secret: "gantrytestsecret123", Region: "us-east-1", Data: filepath.Join(dir, "data")}
	vers := filepath.Join(dir, "versions")
	for _, d := range []string{s.Data, vers} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.Secret, "--port", addr,
		"posix", "--versioning-dir", vers, s.Data)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	s.Endpoint = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint)
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("versitygw exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not answer on %s within 30s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Config is an AWS configuration with the server's credentials.
func (s *S3) Config() aws.Config {
	return aws.Config{
		Region:                     s.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.Secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
}

// Client is an S3 client of the server.
func (s *S3) Client() *s3.Client {
	return s3.NewFromConfig(s.Config(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.Endpoint)
		o.UsePathStyle = true
	})
}

// Bucket creates a bucket, with versioning enabled when versioned.
func (s *S3) Bucket(t testing.TB, name string, versioned bool) {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	if versioned {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  &name,
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatalf("enable versioning of %s: %v", name, err)
		}
	}
}

// Put writes an object and returns its version ID.
func (s *S3) Put(t testing.TB, bucket, key, content string) string {
	t.Helper()
	out, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: strings.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
	})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	return aws.ToString(out.VersionId)
}

// Delete removes an object (a delete marker in a versioned bucket).
func (s *S3) Delete(t testing.TB, bucket, key string) {
	t.Helper()
	if _, err := s.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatalf("delete s3://%s/%s: %v", bucket, key, err)
	}
}

// Versions lists the version IDs of key, as the server orders them.
func (s *S3) Versions(t testing.TB, bucket, key string) []string {
	t.Helper()
	out, err := s.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatalf("list versions of s3://%s/%s: %v", bucket, key, err)
	}
	var ids []string
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	for _, m := range out.DeleteMarkers {
		if aws.ToString(m.Key) == key {
			ids = append(ids, "delete:"+aws.ToString(m.VersionId))
		}
	}
	return ids
}

// BackendHCL is a terraform v1.5 backend "s3" block for the server.
func (s *S3) BackendHCL(bucket, key string) string {
	return fmt.Sprintf(`terraform {
  backend "s3" {
    bucket                      = %q
    key                         = %q
    region                      = %q
    endpoint                    = %q
    force_path_style            = true
    skip_credentials_validation = true
    skip_region_validation      = true
    skip_metadata_api_check     = true
  }
}
`, bucket, key, s.Region, s.Endpoint)
}

// Env is the environment terraform and gantry need to reach the server.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.Secret, "AWS_REGION=" + s.Region}
}
