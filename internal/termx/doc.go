// Package termx answers the one question devenv asks about its output
// streams: is this a terminal, and may colour be written to it? Every
// status line, spinner and coloured prefix asks here, so that a pipe, a file,
// TERM=dumb and NO_COLOR (https://no-color.org) are honoured the same way
// everywhere.
package termx
