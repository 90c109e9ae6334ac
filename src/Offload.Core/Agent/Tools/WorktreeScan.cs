namespace Offload.Agent.Tools;

/// <summary>
/// One walk of a task's worktree (symlinks not followed, the top <c>.git</c> skipped): its size for the disk limit,
/// and setuid and setgid bits cleared. Inside the sandbox the worktree is mounted nosuid and no_new_privs is set, so a
/// bit there gains nothing; but the worktree is the user's afterwards, and a setuid-root shell left in it (the daemon
/// runs as root in containers and CI) is a way in for whoever runs it. git records neither bit (only 100644/100755).
/// </summary>
public static class WorktreeScan
{
    private const UnixFileMode SetId = UnixFileMode.SetUser | UnixFileMode.SetGroup;

    private static readonly EnumerationOptions Everything = new()
    {
        RecurseSubdirectories = false,
        AttributesToSkip = FileAttributes.ReparsePoint, // symlinks: neither followed nor counted; dotfiles are not skipped
        IgnoreInaccessible = true,
        ReturnSpecialDirectories = false,
    };

    /// <summary>The bytes the files under these folders hold (apparent sizes, as <c>ulimit -f</c> counts).</summary>
    public static long Size(IEnumerable<string> roots) => roots.Sum(root => Walk(root, clear: null));

    /// <summary>Clears S_ISUID and S_ISGID on every file of the worktree; returns its size and the files changed (relative paths).</summary>
    public static (long Size, IReadOnlyList<string> Cleared) ClearSetIdAndMeasure(string? worktree)
    {
        if (worktree is null || !Directory.Exists(worktree))
        {
            return (0, []);
        }

        var cleared = new List<string>();
        var size = Walk(worktree, cleared);
        cleared.Sort(StringComparer.Ordinal);
        return (size, cleared);
    }

    private static long Walk(string root, List<string>? clear)
    {
        long total = 0;
        root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.TryPop(out var dir))
        {
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = dir.EnumerateFileSystemInfos("*", Everything).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone meanwhile, or unreadable
            }

            foreach (var entry in entries)
            {
                if (entry is DirectoryInfo sub)
                {
                    if (!(sub.Name == ".git" && dir.FullName == root))
                    {
                        pending.Push(sub);
                    }

                    continue;
                }

                if (entry is not FileInfo file || (file.Name == ".git" && dir.FullName == root))
                {
                    continue;
                }

                total += file.Length;
                if (clear is not null && (file.UnixFileMode & SetId) != 0)
                {
                    try
                    {
                        File.SetUnixFileMode(file.FullName, file.UnixFileMode & ~SetId);
                        clear.Add(Path.GetRelativePath(root, file.FullName));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                    }
                }
            }
        }

        return total;
    }
}
