// Package dirs gives devenv's two folders of its own, so that every part
// finds them by one rule:
//
//   - the cache folder (compiled supervisors, stand-in build sources and
//     binaries): $DEVENV_CACHE, else $XDG_CACHE_HOME/devenv, else
//     $HOME/.cache/devenv;
//   - the state folder (what devenv remembers between runs, such as the
//     inputs of the last prebuild): $DEVENV_STATE, else
//     $XDG_STATE_HOME/devenv, else $HOME/.local/state/devenv.
//
// Never a shared folder such as /tmp: devenv runs what it finds there (the
// supervisor goes into images, cached binaries into the node image), so a
// folder another user could write to would let them run code as you. Both
// folders are created 0700 and refused when another user owns them or when
// other users may write to them.
package dirs
