// What `serve` checks before it trusts its directories (issue 13, item 6), modelled on
// `postfix check`: spool_dir and state_dir, their subdirectories and the files in them must belong
// to the user the relay runs as and be closed to everybody else. A 0777 spool was accepted
// silently and a file another user planted in queue/ was delivered; a symlink planted in
// recycled/ made the relay overwrite its target.
//   - what the relay owns but left open (group/other bits on a directory or file) is fixed
//     (chmod to owner-only) with a warning naming the path;
//   - a symlink inside the tree is removed with a warning (the relay never makes one);
//   - anything owned by another user, or not a directory where one belongs, stops the start with
//     a message naming the path and the fix (std::runtime_error).
// A config file readable by others that holds secrets draws a warning.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace relay {

// Checks `root` (followed if it is a symlink: /var/spool/x -> /srv/x is the admin's choice) and,
// below it, the subdirectories named in `subdirs` (not followed) and the files directly in them.
// Missing ones are fine: they are created 0700 later. `subdirs_without_files` are checked
// themselves only (state_dir/tls holds a certificate meant to be readable). The root may keep its
// search bits (0711: sendmail reaches spool_dir/maildrop); root-owned entries are trusted as they are.
// Returns the paths fixed.
std::vector<std::string> check_private_tree(const std::filesystem::path& root, const std::vector<std::string>& subdirs,
                                            const std::vector<std::string>& subdirs_without_files = {});

// True when `config_file` can be read by users other than its owner and group, and names a
// secret inline (client_secret, password, upstream_password): the caller logs a warning.
bool config_exposes_secrets(const std::filesystem::path& config_file);

}  // namespace relay
