package main

// version is what GET /version answers. Keep it on one line: the inner-loop test edits it.
const version = "v1"
