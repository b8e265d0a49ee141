"""Where an attempt works: the workspace sources (a warm pool member, a checkout made
ahead, a reused worktree), setting a worktree up (included files, shared paths, the set-up
hook, the port bundle), and saving work before anything is removed."""
