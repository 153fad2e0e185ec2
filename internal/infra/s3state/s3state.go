// Package s3state reads the versions of a Terraform state kept in an S3
// bucket with versioning, and rolls the state back to one of them by
// writing that version's content again as a new version: history is never
// deleted. It refuses (RefusedError) when the bucket is not versioned, the
// target is missing or not a state, belongs to another lineage, or a
// Terraform lock is held; a refusal writes nothing.
package s3state

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/gantry-ci/gantry/internal/infra/backend"
	"github.com/gantry-ci/gantry/internal/infra/tfstate"
)

// MaxStateSize bounds the size of a state version read into memory.
const MaxStateSize = 256 << 20

// Client reaches one workspace's state.
type Client struct {
	cfg       *backend.Config
	workspace string
	s3        *s3.Client
	ddb       *dynamodb.Client // nil without a lock table
	log       *slog.Logger
}

// Option configures New.
type Option func(*options)

type options struct {
	log       *slog.Logger
	awsConfig *aws.Config
	env       map[string]string
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAWSConfig uses cfg instead of loading the default AWS chain (tests).
func WithAWSConfig(cfg aws.Config) Option { return func(o *options) { o.awsConfig = &cfg } }

// WithEnv takes AWS settings from vars (KEY=VALUE) before the process
// environment: AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN), AWS_PROFILE, AWS_REGION or AWS_DEFAULT_REGION. A
// pipeline step passes its own environment this way.
func WithEnv(vars []string) Option {
	return func(o *options) {
		o.env = map[string]string{}
		for _, kv := range vars {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AWS_") {
				o.env[k] = v
			}
		}
	}
}

// New returns a client for workspace ws of the state cfg describes.
// Credentials come from the backend's access_key/secret_key or profile,
// else the default AWS chain (environment, shared config and
// credentials files, web identity, instance metadata).
func New(ctx context.Context, cfg *backend.Config, ws string, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	var ac aws.Config
	if o.awsConfig != nil {
		ac = o.awsConfig.Copy()
	} else {
		var lo []func(*config.LoadOptions) error
		if p := o.env["AWS_PROFILE"]; p != "" {
			lo = append(lo, config.WithSharedConfigProfile(p))
		}
		if cfg.Profile != "" {
			lo = append(lo, config.WithSharedConfigProfile(cfg.Profile))
		}
		if r := o.env["AWS_REGION"]; r != "" {
			lo = append(lo, config.WithRegion(r))
		} else if r := o.env["AWS_DEFAULT_REGION"]; r != "" {
			lo = append(lo, config.WithRegion(r))
		}
		if id, secret := o.env["AWS_ACCESS_KEY_ID"], o.env["AWS_SECRET_ACCESS_KEY"]; id != "" && secret != "" {
			lo = append(lo, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, o.env["AWS_SESSION_TOKEN"])))
		}
		if cfg.AccessKey != "" || cfg.SecretKey != "" {
			lo = append(lo, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
		}
		var err error
		ac, err = config.LoadDefaultConfig(ctx, lo...)
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
	}
	if cfg.Region != "" {
		ac.Region = cfg.Region
	}
	if ac.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("S3 backend: no region (set region in the backend block, -backend-config region=..., or AWS_REGION)")
		}
		ac.Region = "us-east-1" // S3-compatible servers mostly ignore it
	}
	// Checksums only when the operation requires them: S3-compatible
	// servers do not all accept the newer trailing checksums.
	ac.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	ac.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	c := &Client{cfg: cfg, workspace: ws, log: o.log}
	c.s3 = s3.NewFromConfig(ac, func(so *s3.Options) {
		if cfg.Endpoint != "" {
			so.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		so.UsePathStyle = cfg.UsePathStyle
	})
	if cfg.DynamoDBTable != "" {
		c.ddb = dynamodb.NewFromConfig(ac, func(do *dynamodb.Options) {
			if cfg.DynamoDBEndpoint != "" {
				do.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
			}
		})
	}
	return c, nil
}

// Key is the state object's key.
func (c *Client) Key() string { return c.cfg.StateKey(c.workspace) }

// Location is s3://bucket/key.
func (c *Client) Location() string { return "s3://" + c.cfg.Bucket + "/" + c.Key() }

// Version is one object version of the state.
type Version struct {
	ID           string
	Time         time.Time
	Size         int64
	ETag         string
	Current      bool
	DeleteMarker bool
	// State is the parsed content; nil for a delete marker or when the
	// content is not a state (ParseErr says why).
	State    *tfstate.State
	ParseErr error
	// Changes are the resource changes from the next older version that
	// is a state (from nothing for the oldest).
	Changes tfstate.Changes
}

// CheckVersioning refuses (ErrNotVersioned) a bucket whose versioning is
// not Enabled.
func (c *Client) CheckVersioning(ctx context.Context) error {
	out, err := c.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &c.cfg.Bucket})
	if err != nil {
		return classify(err, "read the versioning of bucket "+c.cfg.Bucket)
	}
	if out.Status != s3types.BucketVersioningStatusEnabled {
		status := string(out.Status)
		if status == "" {
			status = "never enabled"
		}
		return refuse(ErrNotVersioned, "bucket %s: versioning %s; without it there is no history to restore", c.cfg.Bucket, status)
	}
	return nil
}

// Versions lists the state's versions, newest first, at most limit (0:
// all), each read and parsed, with the changes from the older one.
func (c *Client) Versions(ctx context.Context, limit int) ([]Version, error) {
	key := c.Key()
	var vs []Version
	in := &s3.ListObjectVersionsInput{Bucket: &c.cfg.Bucket, Prefix: &key}
	for {
		out, err := c.s3.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, classify(err, "list the versions of "+c.Location())
		}
		for _, v := range out.Versions {
			if aws.ToString(v.Key) != key {
				continue
			}
			vs = append(vs, Version{
				ID: aws.ToString(v.VersionId), Time: aws.ToTime(v.LastModified),
				Size: aws.ToInt64(v.Size), ETag: aws.ToString(v.ETag), Current: aws.ToBool(v.IsLatest),
			})
		}
		for _, m := range out.DeleteMarkers {
			if aws.ToString(m.Key) != key {
				continue
			}
			vs = append(vs, Version{
				ID: aws.ToString(m.VersionId), Time: aws.ToTime(m.LastModified),
				Current: aws.ToBool(m.IsLatest), DeleteMarker: true,
			})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	// Newest first; versions with the same second keep the server's order,
	// which lists the newest first.
	sortNewestFirst(vs)
	if limit > 0 && len(vs) > limit+1 {
		vs = vs[:limit+1] // one more to compute the last one's changes
	}
	for i := range vs {
		if vs[i].DeleteMarker {
			continue
		}
		data, err := c.get(ctx, vs[i].ID)
		if err != nil {
			return nil, err
		}
		vs[i].State, vs[i].ParseErr = tfstate.Parse(data)
	}
	for i := range vs {
		if vs[i].State == nil {
			continue
		}
		var older *tfstate.State
		for j := i + 1; j < len(vs); j++ {
			if vs[j].State != nil {
				older = vs[j].State
				break
			}
		}
		vs[i].Changes = tfstate.Diff(older, vs[i].State)
	}
	if limit > 0 && len(vs) > limit {
		vs = vs[:limit]
	}
	return vs, nil
}

func sortNewestFirst(vs []Version) {
	// Stable insertion sort by time: lists are short and the server's
	// order breaks ties.
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].Time.After(vs[j-1].Time); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

// get reads one version's content (the current one when id is "").
func (c *Client) get(ctx context.Context, id string) ([]byte, error) {
	data, _, err := c.getWithETag(ctx, id)
	return data, err
}

func (c *Client) getWithETag(ctx context.Context, id string) ([]byte, string, error) {
	in := &s3.GetObjectInput{Bucket: &c.cfg.Bucket, Key: aws.String(c.Key())}
	what := "read the current state " + c.Location()
	if id != "" {
		in.VersionId = aws.String(id)
		what = "read version " + id + " of " + c.Location()
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		// S3 answers a version ID it could never have issued with 400
		// InvalidArgument: for the user, that version does not exist.
		var api smithy.APIError
		if id != "" && errors.As(err, &api) && api.ErrorCode() == "InvalidArgument" {
			return nil, "", &RefusedError{Reason: ErrNotFound, Detail: what + ": no such version", Err: err}
		}
		return nil, "", classify(err, what)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxStateSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", what, err)
	}
	if len(data) > MaxStateSize {
		return nil, "", refuse(ErrCorrupt, "%s: larger than %d MiB", what, MaxStateSize>>20)
	}
	return data, aws.ToString(out.ETag), nil
}

// Get returns a version's content and parsed state; a version that is not
// a state is a refusal (ErrCorrupt).
func (c *Client) Get(ctx context.Context, id string) ([]byte, *tfstate.State, error) {
	data, err := c.get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	st, err := tfstate.Parse(data)
	if err != nil {
		return nil, nil, &RefusedError{Reason: ErrCorrupt, Detail: "version " + id + " of " + c.Location(), Err: err}
	}
	return data, st, nil
}

// Current is the state's current version.
type Current struct {
	VersionID string
	ETag      string
	Data      []byte
	State     *tfstate.State
}

// Current reads the current version of the state. It refuses when there
// is none (ErrNotFound) or it is not a state (ErrCorrupt).
func (c *Client) Current(ctx context.Context) (*Current, error) {
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.cfg.Bucket, Key: aws.String(c.Key())})
	if err != nil {
		return nil, classify(err, "read the current state "+c.Location())
	}
	id := aws.ToString(head.VersionId)
	data, etag, err := c.getWithETag(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := tfstate.Parse(data)
	if err != nil {
		return nil, &RefusedError{Reason: ErrCorrupt, Detail: "the current state " + c.Location() + " (version " + id + ")", Err: err}
	}
	return &Current{VersionID: id, ETag: etag, Data: data, State: st}, nil
}

// LockInfo describes a held Terraform lock, as Terraform records it.
type LockInfo struct {
	// Kind is "dynamodb" or "lockfile"; Where names the table item or object.
	Kind, Where string
	ID          string    `json:"ID"`
	Operation   string    `json:"Operation"`
	Who         string    `json:"Who"`
	Version     string    `json:"Version"`
	Created     time.Time `json:"Created"`
	Path        string    `json:"Path"`
}

// String describes the lock. Its fields come from whoever wrote the lock:
// they are quoted, so control characters cannot reach a terminal.
func (l *LockInfo) String() string {
	s := l.Kind + " lock " + l.Where
	if l.Who != "" || l.Operation != "" {
		s += fmt.Sprintf(" held by %q for %s", l.Who, strings.Trim(strconv.Quote(l.Operation), `"`))
	}
	if !l.Created.IsZero() {
		s += " since " + l.Created.UTC().Format(time.RFC3339)
	}
	if l.ID != "" {
		s += fmt.Sprintf(" (lock ID %q; terraform force-unlock releases it)", l.ID)
	}
	return s
}

// Lock returns the held lock, or nil: the lock table's item when the
// backend has dynamodb_table, and Terraform's S3-native lockfile (checked
// always: a newer terraform may use it whatever this configuration says).
func (c *Client) Lock(ctx context.Context) (*LockInfo, error) {
	if c.ddb != nil {
		id := c.cfg.LockID(c.workspace)
		out, err := c.ddb.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &c.cfg.DynamoDBTable,
			Key:            map[string]ddbtypes.AttributeValue{"LockID": &ddbtypes.AttributeValueMemberS{Value: id}},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return nil, classify(err, "read the lock table "+c.cfg.DynamoDBTable)
		}
		if len(out.Item) > 0 {
			li := &LockInfo{Kind: "dynamodb", Where: c.cfg.DynamoDBTable + " LockID=" + id}
			if info, ok := out.Item["Info"].(*ddbtypes.AttributeValueMemberS); ok {
				_ = json.Unmarshal([]byte(info.Value), li) // an unreadable Info is still a lock
			}
			return li, nil
		}
	}
	key := c.cfg.LockfileKey(c.workspace)
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.cfg.Bucket, Key: &key})
	if err != nil {
		var r *RefusedError
		if cerr := classify(err, "read the lockfile s3://"+c.cfg.Bucket+"/"+key); errors.As(cerr, &r) && errors.Is(r, ErrNotFound) {
			return nil, nil
		} else {
			return nil, cerr
		}
	}
	defer out.Body.Close()
	li := &LockInfo{Kind: "lockfile", Where: "s3://" + c.cfg.Bucket + "/" + key}
	if b, err := io.ReadAll(io.LimitReader(out.Body, 1<<20)); err == nil {
		_ = json.Unmarshal(b, li) // an unreadable lockfile is still a lock
	}
	return li, nil
}

// Plan is a checked rollback, ready to write.
type Plan struct {
	Location string
	Current  *Current
	// TargetID is the version restored; Target its state.
	TargetID string
	Target   *tfstate.State
	// Data is the content to write: the target's, with NewSerial.
	Data      []byte
	NewSerial uint64
	// Changes go from the current state to the restored one: what the
	// state will say differently once restored.
	Changes tfstate.Changes
}

// Prepare checks a rollback to version targetID without writing: the
// bucket is versioned, the target exists and is a state of the current
// lineage, no lock is held. The restored content gets serial = current
// serial + 1, which Terraform accepts as newer.
func (c *Client) Prepare(ctx context.Context, targetID string) (*Plan, error) {
	if targetID == "" {
		return nil, errors.New("no target version given")
	}
	if err := c.CheckVersioning(ctx); err != nil {
		return nil, err
	}
	cur, err := c.Current(ctx)
	if err != nil {
		return nil, err
	}
	if cur.VersionID == targetID {
		return nil, refuse(ErrNothingToDo, "version %s is the current state of %s", targetID, c.Location())
	}
	data, target, err := c.Get(ctx, targetID)
	if err != nil {
		return nil, err
	}
	if target.Lineage != cur.State.Lineage {
		return nil, refuse(ErrLineage, "version %s has lineage %s, the current state %s has %s: it is another state, not an earlier version of this one",
			targetID, target.Lineage, c.Location(), cur.State.Lineage)
	}
	if cur.State.Serial == math.MaxUint64 {
		return nil, refuse(ErrCorrupt, "the current serial %d cannot be raised", cur.State.Serial)
	}
	serial := cur.State.Serial + 1
	out, err := tfstate.WithSerial(data, serial)
	if err != nil {
		return nil, &RefusedError{Reason: ErrCorrupt, Detail: "version " + targetID, Err: err}
	}
	if li, err := c.Lock(ctx); err != nil {
		return nil, err
	} else if li != nil {
		return nil, refuse(ErrLocked, "%s", li)
	}
	return &Plan{
		Location: c.Location(), Current: cur, TargetID: targetID, Target: target,
		Data: out, NewSerial: serial, Changes: tfstate.Diff(cur.State, target),
	}, nil
}

// Result is a written rollback.
type Result struct {
	// VersionID is the new current version.
	VersionID string
	// Conditional reports whether the server enforced the write's
	// condition (If-Match on the current version's ETag).
	Conditional bool
}

// Apply writes a prepared rollback as a new version of the state, on the
// condition that the current version is still the one Prepare read: with
// If-Match on its ETag where the server supports it, else by checking the
// current version and the lock again just before the write. The write of
// one object is atomic: a failure leaves the old version current. With a
// lock table, the state's digest item (LockID = bucket/key-md5) is updated
// to the new content's MD5, as Terraform expects.
func (c *Client) Apply(ctx context.Context, p *Plan) (*Result, error) {
	if li, err := c.Lock(ctx); err != nil {
		return nil, err
	} else if li != nil {
		return nil, refuse(ErrLocked, "%s", li)
	}
	put := func(conditional bool) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{
			Bucket: &c.cfg.Bucket, Key: aws.String(c.Key()),
			Body: bytes.NewReader(p.Data), ContentLength: aws.Int64(int64(len(p.Data))),
			ContentType: aws.String("application/json"),
		}
		if conditional {
			in.IfMatch = aws.String(p.Current.ETag)
		}
		if c.cfg.Encrypt {
			in.ServerSideEncryption = s3types.ServerSideEncryptionAes256
		}
		return c.s3.PutObject(ctx, in)
	}
	conditional := true
	out, err := put(true)
	if err != nil && notImplemented(err) {
		c.log.Warn("the server does not support conditional writes; checking the current version before writing instead", "location", c.Location())
		conditional = false
		head, herr := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.cfg.Bucket, Key: aws.String(c.Key())})
		if herr != nil {
			return nil, classify(herr, "check the current state "+c.Location())
		}
		if id := aws.ToString(head.VersionId); id != p.Current.VersionID {
			return nil, refuse(ErrConcurrent, "the current version of %s is now %s, not %s", c.Location(), id, p.Current.VersionID)
		}
		out, err = put(false)
	}
	if err != nil {
		return nil, classify(err, "write the restored state to "+c.Location())
	}
	res := &Result{VersionID: aws.ToString(out.VersionId), Conditional: conditional}
	if c.ddb != nil {
		sum := md5.Sum(p.Data)
		_, err := c.ddb.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &c.cfg.DynamoDBTable,
			Item: map[string]ddbtypes.AttributeValue{
				"LockID": &ddbtypes.AttributeValueMemberS{Value: c.cfg.LockID(c.workspace) + "-md5"},
				"Digest": &ddbtypes.AttributeValueMemberS{Value: hex.EncodeToString(sum[:])},
			},
		})
		if err != nil {
			return res, fmt.Errorf("the state was restored as version %s, but its digest in the lock table %s was not updated (terraform will report a checksum mismatch until the Digest of LockID %s-md5 is %s): %w",
				res.VersionID, c.cfg.DynamoDBTable, c.cfg.LockID(c.workspace), hex.EncodeToString(sum[:]), err)
		}
	}
	return res, nil
}
