package journal

import "testing"

// taskEvents are the three events a `true` task adds to a run's journal:
// its start, its process group and its end.
func taskEvents() []*Event {
	const run = "20261201-210606-7789aabd"
	return []*Event{
		{Type: TaskStarted, Time: 1796194766612509000, Run: run, Task: "t00050", Attempt: 1,
			LogPath: "/home/u/.picoflow/logs/chain100/" + run + "/t00050.1.log"},
		{Type: TaskProcess, Time: 1796194766612709000, Run: run, Task: "t00050", Attempt: 1, PGID: 30323},
		{Type: TaskFinished, Time: 1796194766624497000, Run: run, Task: "t00050", Attempt: 1,
			Status: StatusSuccess, DurationMS: 4},
	}
}

// BenchmarkEncodeTask encodes a task's three events, as Append does before
// it queues them: the journal's CPU per task besides the write.
func BenchmarkEncodeTask(b *testing.B) {
	evs := taskEvents()
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range evs {
			if _, err := encodeEvent(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}
