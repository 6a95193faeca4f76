// Package dag lays a workflow's task graph out in layers by dependency
// depth and draws it as SVG: the web UI's run page and `picoflow graph
// --format svg` draw with the same code.
//
// It owns the layout (which layer and row each task gets, where the edges
// run) and the SVG text, escaping every name it writes. It must never read
// files, the journal or the clock, nor import another PicoFlow package: it
// is given nodes and returns geometry.
package dag
