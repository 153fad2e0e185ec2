package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Group identifies a process group beyond its number: a group id is a
// process id, and the kernel hands process ids out again, so a recorded
// group is only ended when its leader's start time and the boot still match.
type Group struct {
	PGID int
	// Start is the leader's start time in clock ticks after boot (field 22
	// of /proc/PID/stat).
	Start uint64
	// Boot is the kernel's boot id (/proc/sys/kernel/random/boot_id);
	// nothing survives a reboot, so a group of another boot is never ended.
	Boot string
}

// Member is a live process of a group.
type Member struct {
	PID  int
	Name string // the process's command name (/proc/PID/comm)
}

// procRoot is where the process file system is mounted.
const procRoot = "/proc"

// stat is what gantry reads from /proc/PID/stat.
type stat struct {
	name   string
	state  byte
	pgid   int
	start  uint64
	zombie bool
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

// parseStat reads "PID (COMM) STATE PPID PGRP SESSION ... STARTTIME ...";
// COMM may hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(b []byte) (stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return stat{}, fmt.Errorf("malformed /proc stat line %q", b)
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("malformed /proc stat line %q", b)
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return stat{}, fmt.Errorf("malformed /proc stat line %q: pgrp: %w", b, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed /proc stat line %q: starttime: %w", b, err)
	}
	st := f[0][0]
	return stat{name: string(b[open+1 : end]), state: st, pgid: pgid, start: start, zombie: st == 'Z' || st == 'X'}, nil
}

func bootID() (string, error) {
	b, err := os.ReadFile(procRoot + "/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// GroupOf returns the group that pid leads (a process started by Command
// leads its own group).
func GroupOf(pid int) (Group, error) {
	st, err := readStat(pid)
	if err != nil {
		return Group{}, fmt.Errorf("read process %d: %w", pid, err)
	}
	if st.pgid != pid {
		return Group{}, fmt.Errorf("process %d does not lead a process group (its group is %d)", pid, st.pgid)
	}
	boot, err := bootID()
	if err != nil {
		return Group{}, err
	}
	return Group{PGID: pid, Start: st.start, Boot: boot}, nil
}

// members lists the live (not zombie) processes in group g that started no
// earlier than its leader.
func members(g Group) ([]Member, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Member
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone meanwhile, or not readable
		}
		if st.pgid != g.PGID || st.zombie || st.start < g.Start {
			continue
		}
		out = append(out, Member{PID: pid, Name: st.name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// Alive lists the live processes of g, or none when g is over or its id
// now belongs to another group: the leader, if still there, must have the
// recorded start time, and the boot must be the same. While any process
// of a group lives the kernel does not reuse its id, so members without
// the leader are the group's own.
func Alive(g Group) ([]Member, error) {
	if g.PGID <= 1 {
		return nil, fmt.Errorf("refusing process group %d", g.PGID)
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	if boot != g.Boot {
		return nil, nil
	}
	if err := syscall.Kill(-g.PGID, 0); errors.Is(err, syscall.ESRCH) {
		return nil, nil // no process left in the group: nothing to look up
	}
	leader, err := readStat(g.PGID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read process %d: %w", g.PGID, err)
	case leader.start != g.Start:
		return nil, nil // the id was reused
	}
	return members(g)
}

// End ends what is left of group g: SIGTERM to the group, then SIGKILL
// after grace (or when ctx is done), and waits until no process of it is
// left (zombies waiting for their parent count as gone). It returns the
// processes that were running; none when g was already over or its id was
// reused (see Alive).
func End(ctx context.Context, g Group, grace time.Duration) ([]Member, error) {
	left, err := Alive(g)
	if err != nil || len(left) == 0 {
		return nil, err
	}
	if err := syscall.Kill(-g.PGID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return left, fmt.Errorf("signal process group %d: %w", g.PGID, err)
	}
	if gone, err := waitGone(ctx, g, grace); err != nil || gone {
		return left, err
	}
	if err := syscall.Kill(-g.PGID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return left, fmt.Errorf("kill process group %d: %w", g.PGID, err)
	}
	// SIGKILL cannot be ignored; this only waits for the kernel.
	if _, err := waitGone(context.WithoutCancel(ctx), g, WaitDelay); err != nil {
		return left, err
	}
	return left, nil
}

// waitGone polls until g has no live process, for at most d or until ctx
// is done.
func waitGone(ctx context.Context, g Group, d time.Duration) (bool, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := members(g)
		if err != nil {
			return false, err
		}
		if len(left) == 0 {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-deadline.C:
			return false, nil
		case <-tick.C:
		}
	}
}

// Names joins the members' command names for a message: "sleep, sleep".
func Names(ms []Member) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}
