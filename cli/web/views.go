package web

import (
	"github.com/picoflow/picoflow/engine/workflow"
	"net/url"
	"strconv"

	"github.com/picoflow/picoflow/cli/dag"
)

func runHref(id string) string { return "/runs/" + url.PathEscape(id) }

func (m *markup) errorPage(p errorPage) {
	m.top(p.page)
	m.f("<h1>%d %s</h1>\n<p class=\"msg\">%s</p>\n", p.Code, p.Title, p.Msg)
	m.raw(`<p><a href="/">Workflows</a> · <a href="/runs">Runs</a></p>` + "\n")
	m.bottom()
}

func (m *markup) workflowsPage(p workflowsPage) {
	m.top(p.page)
	m.raw("<h1>Workflows</h1>\n")
	if len(p.Rows) == 0 {
		m.raw(`<p class="empty">No workflows yet: put workflow files in the workflows directory, or run one with <code>picoflow run FILE</code>.</p>` + "\n")
		m.bottom()
		return
	}
	m.raw(`<table class="grid">
<thead><tr><th>Workflow</th><th>Schedule</th><th>Next fire</th><th>Last run</th><th>Recent runs</th></tr></thead>
<tbody>
`)
	for _, r := range p.Rows {
		m.f(`<tr class="wf" data-workflow="%s"><td><a href="/runs?workflow=%s">%s</a>`, r.Name, url.QueryEscape(r.Name), r.Name)
		if r.Problem != "" {
			m.f(`<div class="problem">%s</div>`, r.Problem)
		}
		m.raw("</td><td>")
		if r.Schedule != "" {
			m.f("<code>%s</code>", r.Schedule)
		} else {
			m.raw(`<span class="dim">manual</span>`)
		}
		m.raw("</td><td>")
		if r.Next != "" {
			m.text(r.Next)
		} else {
			m.raw(`<span class="dim">–</span>`)
		}
		m.raw("</td><td>")
		if r.Last != nil {
			m.f(`%s <a href="%s">%s</a>`, badge(r.Last.Status), runHref(r.Last.ID), r.Last.Started)
		} else {
			m.raw(`<span class="dim">never ran</span>`)
		}
		m.raw(`</td><td><div class="strip">`)
		for _, c := range r.Strip {
			m.f(`<a class="cell %s" href="%s" title="%s · %s · %s"></a>`, statusClass(c.Status), runHref(c.ID), c.ID, c.Status, c.Started)
		}
		m.raw("</div></td></tr>\n")
	}
	m.raw("</tbody>\n</table>\n")
	m.bottom()
}

func (m *markup) runsPage(p runsPage) {
	m.top(p.page)
	m.raw("<h1>Runs")
	if p.Workflow != "" {
		m.f(" of %s", p.Workflow)
	}
	m.raw("</h1>\n")
	m.f(`<form class="filter" method="get" action="/runs">
<label>Workflow <input name="workflow" value="%s" placeholder="all"></label>
<label>Status <select name="status"><option value="">any</option>`, p.Workflow)
	for _, s := range p.Statuses {
		sel := trusted("")
		if s == p.Status {
			sel = " selected"
		}
		m.f("<option%s>%s</option>", sel, s)
	}
	m.f(`</select></label>
<label>Per workflow <input name="limit" type="number" min="0" value="%d"></label>
<button type="submit">Show</button>
</form>
`, p.Limit)
	if len(p.Runs) == 0 {
		m.raw(`<p class="empty">No runs match.</p>` + "\n")
		m.bottom()
		return
	}
	m.raw(`<table class="grid runs">
<thead><tr><th>Run</th><th>Workflow</th><th>Status</th><th>Started</th><th>Duration</th><th>Trigger</th></tr></thead>
<tbody>
`)
	for _, r := range p.Runs {
		m.f(`<tr data-run="%s"><td><a href="%s"><code>%s</code></a></td><td><a href="/runs?workflow=%s">%s</a></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`+"\n",
			r.ID, runHref(r.ID), r.ID, url.QueryEscape(r.Workflow), r.Workflow, badge(r.Status), r.Started, r.Duration, r.Trigger)
	}
	m.raw("</tbody>\n</table>\n")
	m.bottom()
}

func kvs(list []kv) trusted {
	return fragment(func(m *markup) {
		for _, p := range list {
			m.f(`<code class="kv">%s=%s</code> `, p.Key, p.Value)
		}
	})
}

func (m *markup) runPage(p runPage) {
	m.top(p.page)
	m.f("<h1>Run <code>%s</code> %s</h1>\n", p.ID, badge(p.Status))
	m.f(`<dl class="facts">
<dt>Workflow</dt><dd><a href="/runs?workflow=%s">%s</a></dd>
<dt>Trigger</dt><dd>%s</dd>
<dt>Started</dt><dd>%s</dd>
<dt>Duration</dt><dd>%s</dd>
<dt>Definition</dt><dd><code title="%s">%s</code> %s</dd>
`, url.QueryEscape(p.Workflow), p.Workflow, or(p.Trigger, "–"), p.Started, or(p.Duration, "–"), p.DefHash, workflow.ShortHash(p.DefHash), p.Source)
	if len(p.Params) > 0 {
		m.f("<dt>Params</dt><dd>%s</dd>\n", kvs(p.Params))
	}
	if p.RerunOf != "" {
		m.f("<dt>Rerun of</dt><dd><a href=\"%s\"><code>%s</code></a></dd>\n", runHref(p.RerunOf), p.RerunOf)
	}
	m.raw("</dl>\n")
	m.travel(p.Travel)
	m.raw("<section>\n<h2>Graph</h2>\n<div class=\"scroll\">")
	_ = dag.SVG(m.w, p.nodes, dag.Options{ID: "dag"}) // it escapes every text it writes
	m.raw("</div>\n<p class=\"legend\">")
	for _, s := range p.Legend {
		m.f("%s ", badge(s))
	}
	m.raw(`<span class="dim">· hover a task for its attempts, exit code and duration; click it for its log</span></p>
</section>
<section>
<h2>Timeline</h2>
<div class="scroll">`)
	gantt(m.w, p.names, p.events[:p.shown], p.start, p.asOf) // it escapes every text it writes
	m.raw(`</div>
</section>
<section>
<h2>Tasks</h2>
<table class="grid tasks">
<thead><tr><th>Task</th><th>Status</th><th>Attempts</th><th>Exit</th><th>Duration</th><th>Outputs</th><th>Note</th><th>Log</th></tr></thead>
<tbody>
`)
	for _, t := range p.Tasks {
		m.f(`<tr data-task="%s"><td>%s</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td class="note">%s</td><td>`,
			t.Name, t.Name, badge(t.Status), t.Attempts, t.Exit, t.Duration, kvs(t.Outputs), t.Note)
		if t.LogHref != "" {
			m.f(`<a href="%s">log</a>`, t.LogHref)
		}
		m.raw("</td></tr>\n")
	}
	m.raw(`</tbody>
</table>
</section>
<section>
<h2>Journal</h2>
<table class="grid events">
<thead><tr><th>Seq</th><th>Offset</th><th>Task</th><th>Att</th><th>Event</th><th>Exit</th><th>Detail</th></tr></thead>
<tbody>
`)
	m.journalRows(p)
	api := runHref(p.ID)
	if !p.Travel.Latest {
		api += "?seq=" + strconv.FormatUint(p.Travel.Seq, 10)
	}
	m.f(`</tbody>
</table>
<p class="dim">The same data as JSON: <a href="/api%s">/api/runs/%s</a> (what <code>picoflow replay --json</code> prints).</p>
</section>
`, api, p.ID)
	m.bottom()
}

// journalRows writes one table row per journal event of the run, marking
// the event shown (the travel position) and those after it.
func (m *markup) journalRows(p runPage) {
	base := runHref(p.ID)
	for i, ev := range p.events {
		e := eventRowOf(base, ev, p.start, i == p.shown-1, i >= p.shown)
		class := trusted("")
		switch {
		case e.Current:
			class = ` class="current"`
		case e.Later:
			class = ` class="later"`
		}
		att := ""
		if e.Attempt > 0 {
			att = strconv.Itoa(e.Attempt)
		}
		m.f(`<tr%s><td><a href="%s">%d</a></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="note">%s</td></tr>`+"\n",
			class, e.Href, e.Seq, e.Offset, e.Task, att, e.Label, e.Exit, e.Detail)
	}
}

// travel writes the time-travel bar: previous/next links and the slider
// (a GET form: it works without JavaScript; ui.js submits it on release).
func (m *markup) travel(t travel) {
	m.raw(`<form class="travel" method="get" id="travel">` + "\n")
	if t.Prev > 0 {
		m.f(`<a class="step" href="?seq=%d" id="prev" rel="prev">◀ previous event</a>`, t.Prev)
	} else {
		m.raw(`<a class="step off" id="prev">◀ previous event</a>`)
	}
	m.f(`
<label>journal entry <input type="range" name="seq" id="seq" min="%d" max="%d" value="%d"> <output id="seqout" for="seq">%d</output></label>
<button type="submit">Go</button>
`, t.First, t.Last, t.Seq, t.Seq)
	if t.Next > 0 {
		m.f(`<a class="step" href="?seq=%d" id="next" rel="next">next event ▶</a>`, t.Next)
	} else {
		m.raw(`<a class="step off" id="next">next event ▶</a>`)
	}
	if t.Latest {
		m.f(`<span class="asof">latest: event %d of %d</span>`, t.Step, t.Steps)
	} else {
		m.f(`<span class="asof"><strong>as of entry %d</strong> (%s), event %d of %d · <a href="?">latest</a></span>`, t.Seq, t.AsOf, t.Step, t.Steps)
	}
	m.raw("\n</form>\n")
}

func (m *markup) logPage(p logPage) {
	m.top(p.page)
	m.f(`<h1>%s <span class="dim">attempt %d</span> %s</h1>
<p class="facts-line">Run <a href="%s"><code>%s</code></a> of %s · attempts: `, p.Task, p.Current, badge(p.Status), p.RunHref, p.Run, p.Workflow)
	for _, a := range p.Attempts {
		if a == p.Current {
			m.f("<strong>%d</strong> ", a)
		} else {
			m.f(`<a href="%s/tasks/%s/log?attempt=%d">%d</a> `, p.RunHref, url.PathEscape(p.Task), a, a)
		}
	}
	if p.LogPath != "" {
		m.f(`· <a href="%s">whole file</a>`, p.RawHref)
	}
	m.raw("</p>\n")
	if p.Missing != "" {
		m.f(`<p class="empty">%s</p>`+"\n", p.Missing)
	}
	if p.Cut {
		m.f(`<p class="dim">The last 256 KiB; the <a href="%s">whole file</a> has more.</p>`+"\n", p.RawHref)
	}
	if p.Follow {
		m.f(`<pre id="log" class="log" data-follow="%s" data-offset="%d">%s</pre>
<p class="dim" id="follow">Following the log while the attempt runs…</p>
`, p.RawHref, p.Size, p.Text)
	} else {
		m.f(`<pre id="log" class="log">%s</pre>`+"\n", p.Text)
	}
	m.bottom()
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
