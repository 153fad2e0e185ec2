// Package shell is the script kind: it runs the `run:` scripts of
// pipeline steps. The engine builds it from a step's run:, shell: and
// inputs: (see step.Script); no pipeline names it in `uses:`.
package shell

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/internal/proc"
	"github.com/gantry-ci/gantry/internal/step"
)

// OutputEnv names the file a script appends KEY=VALUE lines to, to set
// outputs.
const OutputEnv = "GANTRY_OUTPUT"

// Kind is the script kind. Its inputs are a step.Script; a script sets
// whatever outputs it writes to $GANTRY_OUTPUT.
var Kind = step.Kind{
	Name:       "run",
	Summary:    "a run: script, with sh -e or the step's shell:",
	AnyOutputs: true,
	New: func(in step.Inputs) (step.Step, error) {
		var sc step.Script
		if err := in.Decode(&sc); err != nil {
			return nil, err
		}
		if sc.Run == "" {
			return nil, in.Errorf("run", "the script is empty")
		}
		return &Step{Script: sc.Run, Shell: sc.Shell, Inputs: sc.Inputs}, nil
	},
}

// Step runs a script with a shell.
type Step struct {
	Script string
	// Shell is the interpreter; default "sh", run as `sh -e -c SCRIPT`.
	Shell string
	// Inputs are the globs of the cache key; none means never cached.
	Inputs []string
}

var _ step.Step = (*Step)(nil)

// Run implements step.Step.
func (s *Step) Run(ctx context.Context, env *step.Env) (*step.Result, error) {
	outFile := filepath.Join(env.TempDir, "outputs-"+env.Stage+"-"+env.Step)
	if err := os.WriteFile(outFile, nil, 0o600); err != nil {
		return nil, fmt.Errorf("prepare outputs file: %w", err)
	}
	defer os.Remove(outFile)

	shell := s.Shell
	if shell == "" {
		shell = "sh"
	}
	var cmd *exec.Cmd
	switch filepath.Base(shell) {
	case "sh", "bash", "dash", "zsh", "ash":
		cmd = proc.Command(ctx, shell, "-e", "-c", s.Script)
	default:
		cmd = proc.Command(ctx, shell, "-c", s.Script)
	}
	cmd.Dir = env.Dir
	cmd.Env = append(append([]string(nil), env.Vars...), OutputEnv+"="+outFile)
	cmd.Stdout = env.Stdout
	cmd.Stderr = env.Stdout
	p, err := proc.Start(ctx, cmd)
	if err != nil {
		var de *proc.DirError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("start %s: %w", shell, err)
	}
	// The script's verdict is its shell's exit status; whatever it left
	// running in its process group is ended by Wait.
	err = p.Wait()
	if left := p.Leftovers(); len(left) > 0 {
		noun := "processes"
		if len(left) == 1 {
			noun = "process"
		}
		fmt.Fprintf(env.Stdout, "gantry: killed %d %s left running by the step: %s\n", len(left), noun, proc.Names(left))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("script exited with status %d", ee.ExitCode())
		}
		return nil, fmt.Errorf("run %s: %w", shell, err)
	}
	outputs, err := ReadOutputs(outFile)
	if err != nil {
		return nil, err
	}
	return &step.Result{Outputs: outputs}, nil
}

// CacheKey implements step.Cacheable; a script without inputs has none
// (the engine treats an empty Files list with NoCache as uncacheable).
func (s *Step) CacheKey(context.Context, *step.Env) (step.CacheKey, error) {
	if len(s.Inputs) == 0 {
		return step.CacheKey{}, ErrNotCacheable
	}
	return step.CacheKey{Files: s.Inputs}, nil
}

// ErrNotCacheable tells the engine a step cannot be cached this time.
var ErrNotCacheable = step.ErrNotCacheable

// ReadOutputs parses a KEY=VALUE outputs file. Values that are JSON
// numbers, booleans, arrays or objects keep their type; anything else is a
// string. KEY<<EOF ... EOF sets a multi-line value.
func ReadOutputs(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read outputs: %w", err)
	}
	defer f.Close()
	out := map[string]any{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		if key, delim, ok := strings.Cut(text, "<<"); ok && !strings.Contains(key, "=") {
			var b strings.Builder
			closed := false
			for sc.Scan() {
				line++
				if sc.Text() == delim {
					closed = true
					break
				}
				if b.Len() > 0 {
					b.WriteByte('\n')
				}
				b.WriteString(sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("$%s line %d: %s<<%s is never closed", OutputEnv, line, key, delim)
			}
			out[strings.TrimSpace(key)] = b.String()
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok || strings.TrimSpace(key) == "" {
			return nil, fmt.Errorf("$%s line %d: want KEY=VALUE, got %q", OutputEnv, line, text)
		}
		out[strings.TrimSpace(key)] = parseValue(val)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read outputs: %w", err)
	}
	return out, nil
}

func parseValue(s string) any {
	t := strings.TrimSpace(s)
	if t == "" {
		return s
	}
	switch t[0] {
	case '{', '[', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var v any
		if err := json.Unmarshal([]byte(t), &v); err == nil {
			return v
		}
	}
	return s
}
