// Package dirs gives devenv's two folders of its own, so that every part
// finds them by one rule:
//
//   - the cache folder (stand-in build sources and binaries): $DEVENV_CACHE, else $XDG_CACHE_HOME/devenv, else
//     $HOME/.cache/devenv;
//   - the state folder (what devenv remembers between runs, such as the
//     inputs of the last prebuild, project locks, the config hash key, the
//     clusters devenv created, the host ports it chose): $DEVENV_STATE, else
//     $XDG_STATE_HOME/devenv, else $HOME/.local/state/devenv.
//
// Never a shared folder such as /tmp: devenv runs what it finds there
// (cached binaries go into the node image), so a
// folder another user could write to would let them run code as you. Both
// folders are created 0700 and refused when another user owns them or when
// other users may write to them.
//
// Files of devenv's own in them (the project locks, the config hash key)
// are opened with OpenOwn, which never follows a symbolic link, creates them
// 0600 and refuses what is not a regular file of the user's.
package dirs
