// Package images manages devenv's stand-in images: the catalogue (All), the
// incremental builder behind `devenv images build` (Build), listing, saving
// and loading them (List, Save, Load), and the stand-in rule that every other
// part of devenv follows when it needs an image (Resolver, RewriteDockerfile):
//
//  1. an image present locally is used as it is;
//  2. otherwise devenv tries to pull it, briefly;
//  3. otherwise a stand-in built by `devenv images build` is used, and one line
//     says so;
//  4. otherwise the error (ErrNoImage) names the image and the command that
//     builds a stand-in.
//
// A stand-in is never tagged under the real image's name: Dockerfiles are
// rewritten in the build context devenv sends, never on disk.
package images
