package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// AppendLogs appends lines to a step's log in one transaction. It assigns
// each line the next Seq of (run, stage, step), starting at 1, and sets it
// in lines; a zero Time becomes now and an empty Stream "out".
func (s *Store) AppendLogs(ctx context.Context, runID int64, stage, step string, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	now := s.now()
	return s.withTx(ctx, fmt.Sprintf("append %d log lines to %s/%s of run %d", len(lines), stage, step, runID), func(tx *sql.Tx) error {
		if s.d.rowLock != "" {
			// Appends to one run take turns: the next Seq is read, then
			// written, and the cursor of LogsAfter (an identity column,
			// numbered at insert) must grow in the order the lines
			// become visible, or a follower could step over a batch
			// committed late.
			var one int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE id = ?`+s.d.rowLock, runID).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		// The last Seq, read from the end of the primary key's index. (Not
		// MAX(seq): PostgreSQL, without statistics on a young table,
		// aggregates every line of the step instead.)
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM logs WHERE run_id = ? AND stage = ? AND step = ? ORDER BY seq DESC LIMIT 1`,
			runID, stage, step).Scan(&seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		for i := range lines {
			l := &lines[i]
			seq++
			l.Seq, l.Stage, l.Step = seq, stage, step
			if l.Time.IsZero() {
				l.Time = now
			}
			if l.Stream == "" {
				l.Stream = "out"
			}
		}
		// Many rows per INSERT: one round trip per chunk, not per line
		// (which costs PostgreSQL a network round trip each).
		for start := 0; start < len(lines); start += logInsertRows {
			chunk := lines[start:min(start+logInsertRows, len(lines))]
			args := make([]any, 0, len(chunk)*7)
			for i := range chunk {
				l := &chunk[i]
				args = append(args, runID, stage, step, l.Seq, toNanos(l.Time), l.Stream, s.d.text(l.Text))
			}
			if _, err := tx.ExecContext(ctx, logInsert(len(chunk)), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// logInsertRows is the most rows one INSERT of AppendLogs writes (7
// parameters each, far below both databases' limits).
const logInsertRows = 100

// logInsert is the INSERT of n log lines.
func logInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO logs (run_id, stage, step, seq, time, stream, text) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// Logs returns log lines with Seq > afterSeq. With stage and step set it
// returns that step's log in Seq order. An empty stage or step matches
// every stage or step: Logs(ctx, id, "", "", 0) is the whole run's log,
// ordered by time, then Seq. Seq numbers each step's lines separately, so
// afterSeq is only a cursor when one step is asked for.
func (s *Store) Logs(ctx context.Context, runID int64, stage, step string, afterSeq int64) ([]LogLine, error) {
	where := []string{"run_id = ?", "seq > ?"}
	args := []any{runID, afterSeq}
	if stage != "" {
		where = append(where, "stage = ?")
		args = append(args, stage)
	}
	if step != "" {
		where = append(where, "step = ?")
		args = append(args, step)
	}
	order := "time, seq, " + s.d.logCursor
	if stage != "" && step != "" {
		order = "seq"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT stage, step, seq, time, stream, text FROM logs WHERE `+
		strings.Join(where, " AND ")+` ORDER BY `+order, args...)
	if err != nil {
		return nil, fmt.Errorf("logs of %s/%s of run %d: %w", stage, step, runID, err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var l LogLine
		var t int64
		if err := rows.Scan(&l.Stage, &l.Step, &l.Seq, &t, &l.Stream, &l.Text); err != nil {
			return nil, fmt.Errorf("logs of %s/%s of run %d: %w", stage, step, runID, err)
		}
		l.Time = fromNanos(t)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("logs of %s/%s of run %d: %w", stage, step, runID, err)
	}
	return out, nil
}

// stepLogPageQuery reads a range of one step's log from the primary
// key (run_id, stage, step, seq).
const stepLogPageQuery = `SELECT stage, step, seq, time, stream, text FROM logs
	WHERE run_id = ? AND stage = ? AND step = ? AND seq > ? ORDER BY seq LIMIT ?`

// StepLogPage returns at most limit lines of one step's log with Seq >
// afterSeq, in Seq order, and whether more lines follow the last one.
// It reads the page (and one line more) from the primary key, so a page
// costs its own lines however long the log is. A limit below 1 is an
// error.
func (s *Store) StepLogPage(ctx context.Context, runID int64, stage, step string, afterSeq int64, limit int) ([]LogLine, bool, error) {
	what := fmt.Sprintf("page of the log of %s/%s of run %d after line %d", stage, step, runID, afterSeq)
	if limit < 1 {
		return nil, false, fmt.Errorf("%s: limit %d: want 1 or more", what, limit)
	}
	rows, err := s.r.QueryContext(ctx, stepLogPageQuery, runID, stage, step, afterSeq, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := make([]LogLine, 0, min(limit, 1024))
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var l LogLine
		var t int64
		if err := rows.Scan(&l.Stage, &l.Step, &l.Seq, &t, &l.Stream, &l.Text); err != nil {
			return nil, false, fmt.Errorf("%s: %w", what, err)
		}
		l.Time = fromNanos(t)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", what, err)
	}
	return out, more, nil
}

// LogsAfter returns the log lines appended after cursor, in the order they
// were appended, and the cursor to pass next time: 0 starts at the
// beginning. An empty stage or step matches every stage or step. It reads
// only the new lines, so following a run's whole log costs as much as the
// log, not the log times the number of polls.
func (s *Store) LogsAfter(ctx context.Context, runID int64, stage, step string, cursor int64) ([]LogLine, int64, error) {
	return s.LogsAfterLimit(ctx, runID, stage, step, cursor, 0)
}

// LogsAfterLimit is LogsAfter reading at most limit lines (0: no limit),
// so that a follower of a long log holds one batch at a time: fewer than
// limit lines means it has caught up.
func (s *Store) LogsAfterLimit(ctx context.Context, runID int64, stage, step string, cursor int64, limit int) ([]LogLine, int64, error) {
	if limit < 0 {
		return nil, cursor, fmt.Errorf("logs of %s/%s of run %d after %d: limit %d: want 0 (none) or more", stage, step, runID, cursor, limit)
	}
	where := []string{"run_id = ?", s.d.logCursor + " > ?"}
	args := []any{runID, cursor}
	if stage != "" {
		where = append(where, "stage = ?")
		args = append(args, stage)
	}
	if step != "" {
		where = append(where, "step = ?")
		args = append(args, step)
	}
	what := fmt.Sprintf("logs of %s/%s of run %d after %d", stage, step, runID, cursor)
	bound := ""
	if limit > 0 {
		bound = " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+s.d.logCursor+`, stage, step, seq, time, stream, text FROM logs WHERE `+
		strings.Join(where, " AND ")+` ORDER BY `+s.d.logCursor+bound, args...)
	if err != nil {
		return nil, cursor, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []LogLine
	next := cursor
	for rows.Next() {
		var l LogLine
		var t int64
		if err := rows.Scan(&next, &l.Stage, &l.Step, &l.Seq, &t, &l.Stream, &l.Text); err != nil {
			return nil, cursor, fmt.Errorf("%s: %w", what, err)
		}
		l.Time = fromNanos(t)
		l.Cursor = next
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, fmt.Errorf("%s: %w", what, err)
	}
	return out, next, nil
}
