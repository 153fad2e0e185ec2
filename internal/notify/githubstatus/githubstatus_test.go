package githubstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type recorded struct {
	method, path, auth, accept, ctype string
	body                              map[string]string
}

// server is a local statuses API that records and checks requests.
func server(t *testing.T, code int, answer string) (*httptest.Server, *[]recorded) {
	var mu sync.Mutex
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), accept: r.Header.Get("Accept"), ctype: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(data, &rec.body); err != nil {
			t.Errorf("request body is not JSON: %s", data)
		}
		mu.Lock()
		got = append(got, rec)
		mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestPost(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
	}{{"github.com", ""}, {"GitHub Enterprise", "/api/v3"}, {"Gitea", "/api/v1"}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := server(t, http.StatusCreated, `{"id": 1}`)
			c, err := New("s3cret", WithBaseURL(srv.URL+tc.prefix+"/"))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Post(context.Background(), "examplepay/payment-service", "0123456789abcdef0123456789abcdef01234567",
				Status{State: Success, Context: StageContext("commit"), Description: "all checks passed", TargetURL: "http://localhost:8080/runs/7"})
			if err != nil {
				t.Fatal(err)
			}
			if len(*got) != 1 {
				t.Fatalf("got %d requests", len(*got))
			}
			r := (*got)[0]
			want := recorded{method: "POST", path: tc.prefix + "/repos/examplepay/payment-service/statuses/0123456789abcdef0123456789abcdef01234567",
				auth: "Bearer s3cret", accept: "application/vnd.github+json", ctype: "application/json",
				body: map[string]string{"state": "success", "context": "gantry/commit", "description": "all checks passed", "target_url": "http://localhost:8080/runs/7"}}
			if r.method != want.method || r.path != want.path || r.auth != want.auth || r.accept != want.accept || r.ctype != want.ctype {
				t.Errorf("request %+v\nwant %+v", r, want)
			}
			for k, v := range want.body {
				if r.body[k] != v {
					t.Errorf("body %s = %q, want %q", k, r.body[k], v)
				}
			}
		})
	}
}

func TestPostErrors(t *testing.T) {
	srv, _ := server(t, http.StatusUnprocessableEntity, `{"message": "No commit found for SHA: abc (token s3cret)"}`)
	c, err := New("s3cret", WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Post(context.Background(), "o/r", "abc", Status{State: Failure, Context: "gantry/commit"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 422 || ae.Temporary() {
		t.Fatalf("got %v, want a 422 APIError", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("token leaked: %v", err)
	}
	srv5, _ := server(t, http.StatusBadGateway, "bad gateway")
	c5, _ := New("t", WithBaseURL(srv5.URL))
	if err := c5.Post(context.Background(), "o/r", "abc", Status{State: Pending}); !errors.As(err, &ae) || !ae.Temporary() {
		t.Errorf("got %v, want a temporary APIError", err)
	}
	for _, bad := range []struct {
		repo, sha string
		st        State
	}{{"noslash", "abc", Success}, {"o/r", "", Success}, {"o/r", "abc", "green"}} {
		if err := c.Post(context.Background(), bad.repo, bad.sha, Status{State: bad.st}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := New(""); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := New("t", WithBaseURL("not a url")); err == nil {
		t.Error("relative base URL accepted")
	}
}

func TestLongDescription(t *testing.T) {
	srv, got := server(t, http.StatusCreated, "{}")
	c, _ := New("t", WithBaseURL(srv.URL))
	if err := c.Post(context.Background(), "o/r", "abc", Status{State: Error, Description: strings.Repeat("é", 200)}); err != nil {
		t.Fatal(err)
	}
	if n := len([]rune((*got)[0].body["description"])); n != 140 {
		t.Errorf("description has %d characters, want 140", n)
	}
}

func TestReporterPostsInOrder(t *testing.T) {
	srv, got := server(t, http.StatusCreated, "{}")
	c, err := New("t", WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReporter(c, "o/r", "abc", nil)
	r.StageStarted("commit", "")
	r.StageFinished("commit", true, "all checks passed", "")
	r.StageStarted("build-test", "")
	r.StageFinished("build-test", false, "coverage 72% < 80%", "")
	r.Close()
	var seq []string
	for _, rec := range *got {
		seq = append(seq, rec.body["context"]+"="+rec.body["state"])
	}
	want := []string{"gantry/commit=pending", "gantry/commit=success", "gantry/build-test=pending", "gantry/build-test=failure"}
	if strings.Join(seq, " ") != strings.Join(want, " ") {
		t.Errorf("posted %v, want %v", seq, want)
	}
}

// TestReporterKeepsFinalStatesWhenBacklogged holds the API's first answer
// until many more statuses than the queue holds are reported, then checks
// that the last state of every context reached the API, in order.
func TestReporterKeepsFinalStatesWhenBacklogged(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	last := map[string]string{}
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			close(arrived)
			<-release
		})
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		mu.Lock()
		last[body["context"]] = body["state"]
		posts++
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c, err := New("t", WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReporter(c, "o/r", "abc", nil)
	r.StageStarted("first", "")
	<-arrived // the reporter is now busy with the first post
	const stages = 300
	for i := range stages {
		stage := fmt.Sprintf("s%03d", i)
		r.StageStarted(stage, "")
		r.StageFinished(stage, i%2 == 0, "done", "")
	}
	r.StageFinished("first", true, "done", "")
	close(release)
	r.Close()
	mu.Lock()
	defer mu.Unlock()
	if got := last["gantry/first"]; got != "success" {
		t.Errorf("gantry/first ended %q, want success", got)
	}
	for i := range stages {
		want := "failure"
		if i%2 == 0 {
			want = "success"
		}
		ctx := StageContext(fmt.Sprintf("s%03d", i))
		if got := last[ctx]; got != want {
			t.Errorf("%s ended %q, want %q", ctx, got, want)
		}
	}
	if posts > 2*stages+2 {
		t.Errorf("%d posts, want at most %d", posts, 2*stages+2)
	}
}

// TestReporterReportAfterClose: a status reported after Close is not
// posted and does not panic.
func TestReporterReportAfterClose(t *testing.T) {
	srv, got := server(t, http.StatusCreated, "{}")
	c, _ := New("t", WithBaseURL(srv.URL))
	r := NewReporter(c, "o/r", "abc", nil)
	r.Close()
	r.StageStarted("late", "")
	r.Close()
	if len(*got) != 0 {
		t.Errorf("posted %d statuses after Close", len(*got))
	}
}
