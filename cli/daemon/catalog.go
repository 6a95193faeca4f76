package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/workflow"
)

// catalog is the daemon's view of the workflows directory: the last good
// definition of every file, reloaded when the file's modification time or
// size changes (polled: no inotify dependency) or on SIGHUP. A file that
// stops validating keeps its previous good definition.
type catalog struct {
	dir   string
	base  workflow.Config // what every file is loaded over: the global defaults
	log   *slog.Logger
	files map[string]*source // by path
}

type source struct {
	mtime time.Time
	size  int64
	wf    *workflow.Workflow // the last good definition; nil: never valid
	bad   bool               // the current content does not validate
}

func newCatalog(dir string, base workflow.Config, log *slog.Logger) *catalog {
	return &catalog{dir: dir, base: base, log: log, files: make(map[string]*source)}
}

// scan stats the directory and reloads the files that changed (every file
// when force). It reports whether the set of good definitions may have
// changed, and how many reloads failed.
func (c *catalog) scan(force bool) (changed bool, failed int, err error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return false, 0, fmt.Errorf("read workflows directory: %w", err)
	}
	seen := make(map[string]bool, len(ents))
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(c.dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			continue // removed meanwhile; the next scan says so
		}
		seen[path] = true
		s := c.files[path]
		if s == nil {
			s = &source{}
			c.files[path] = s
		} else if !force && fi.ModTime().Equal(s.mtime) && fi.Size() == s.size {
			continue
		}
		s.mtime, s.size = fi.ModTime(), fi.Size()
		wf, err := workflow.LoadWith(path, c.base)
		if err == nil {
			_, err = JobOf(wf)
		}
		if err != nil {
			failed++
			s.bad = true
			keep := "it is not scheduled"
			if s.wf != nil {
				keep = "the previous good version of " + s.wf.Name + " stays in effect"
			}
			c.log.Error("invalid workflow file: "+keep, "file", path, "problems", problemText(err))
			continue
		}
		if s.wf == nil || s.wf.Hash != wf.Hash || s.bad {
			changed = true
			c.log.Info("workflow loaded", "workflow", wf.Name, "file", path, "schedule", wf.Schedule, "definition", workflow.ShortHash(wf.Hash))
		}
		s.wf, s.bad = wf, false
	}
	for path, s := range c.files {
		if !seen[path] {
			if s.wf != nil {
				c.log.Warn("workflow file removed: no longer scheduled; its running runs go on", "workflow", s.wf.Name, "file", path)
				changed = true
			}
			delete(c.files, path)
		}
	}
	return changed, failed, nil
}

// workflows returns the good definitions by name. Two files with one name:
// the first by path wins and the other is reported.
func (c *catalog) workflows() map[string]*workflow.Workflow {
	paths := make([]string, 0, len(c.files))
	for p := range c.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make(map[string]*workflow.Workflow, len(paths))
	for _, p := range paths {
		wf := c.files[p].wf
		if wf == nil {
			continue
		}
		if prev := out[wf.Name]; prev != nil {
			c.log.Error("two workflow files define one name: the second is ignored", "workflow", wf.Name, "file", p, "used", prev.Source)
			continue
		}
		out[wf.Name] = wf
	}
	return out
}

// invalid returns the number of files whose current content is invalid.
func (c *catalog) invalid() int {
	n := 0
	for _, s := range c.files {
		if s.bad {
			n++
		}
	}
	return n
}

func problemText(err error) string {
	var probs workflow.Problems
	if errors.As(err, &probs) {
		return probs.Error()
	}
	return err.Error()
}

// JobOf returns the scheduler's view of a workflow: its schedule in its
// time zone, its overlap and catch-up policies.
func JobOf(wf *workflow.Workflow) (schedule.Job, error) {
	j := schedule.Job{Name: wf.Name, Overlap: wf.Overlap, Catchup: wf.Catchup}
	var err error
	if wf.Schedule == "" {
		return j, nil
	}
	loc := time.Local
	if wf.Timezone != "" {
		if loc, err = time.LoadLocation(wf.Timezone); err != nil {
			return j, fmt.Errorf("workflow %s: time zone: %w", wf.Name, err)
		}
	}
	if j.Schedule, err = schedule.Parse(wf.Schedule, loc); err != nil {
		return j, fmt.Errorf("workflow %s: %w", wf.Name, err)
	}
	return j, nil
}
