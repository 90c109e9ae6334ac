namespace Offload.Agent.Tools;

/// <summary>
/// The files under a directory of the worktree, for Glob and Grep. Skips <c>.git</c> and, unless told otherwise, what
/// the worktree's <c>.gitignore</c> files exclude (<see cref="GitIgnore"/>: node_modules, build output), as ripgrep does
/// for Claude Code; the directory asked for is walked even when it is itself ignored. Does not descend into symlinked
/// directories (which could lead outside the worktree or into a loop), and leaves out symlinked files that resolve
/// outside the worktree.
/// </summary>
internal static class FileWalker
{
    private static readonly EnumerationOptions Options = new()
    {
        RecurseSubdirectories = false,
        IgnoreInaccessible = true,
        AttributesToSkip = 0,
        ReturnSpecialDirectories = false,
    };

    public static IEnumerable<FileInfo> Files(ToolContext context, string directory, bool respectGitIgnore, CancellationToken cancellationToken)
    {
        var root = WorktreePath.Root(context);
        var start = Path.TrimEndingDirectorySeparator(directory);
        var startRelative = start == root ? "" : Path.GetRelativePath(root, start) + "/";
        var pending = new Stack<(DirectoryInfo Directory, string Relative, GitIgnore? Ignore)>();
        pending.Push((new DirectoryInfo(start), startRelative, respectGitIgnore ? Above(root, startRelative) : null));
        while (pending.TryPop(out var current))
        {
            cancellationToken.ThrowIfCancellationRequested();
            List<FileSystemInfo> entries;
            try
            {
                entries = current.Directory.EnumerateFileSystemInfos("*", Options).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            var ignore = current.Ignore;
            if (respectGitIgnore && entries.Find(e => e.Name == ".gitignore" && e is FileInfo) is { } rules)
            {
                ignore = GitIgnore.With(ignore, current.Relative, rules.FullName);
            }
            foreach (var entry in entries)
            {
                if (entry.Name == ".git")
                {
                    continue;
                }
                var relative = current.Relative + entry.Name;
                if (entry is DirectoryInfo subdirectory)
                {
                    if (subdirectory.LinkTarget is null && ignore?.IsIgnored(relative, isDirectory: true) != true)
                    {
                        pending.Push((subdirectory, relative + "/", ignore));
                    }
                }
                else if (entry is FileInfo file && ignore?.IsIgnored(relative, isDirectory: false) != true
                    && (file.LinkTarget is null || ResolvesInside(context, file)))
                {
                    yield return file;
                }
            }
        }
    }

    /// <summary>The rules of the .gitignore files from the worktree's root down to (not including) <paramref name="relativeDir"/>.</summary>
    private static GitIgnore? Above(string root, string relativeDir)
    {
        GitIgnore? ignore = null;
        var at = "";
        foreach (var part in relativeDir.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var file = Path.Combine(root, at, ".gitignore");
            if (File.Exists(file))
            {
                ignore = GitIgnore.With(ignore, at, file);
            }
            at += part + "/";
        }
        return ignore;
    }

    private static bool ResolvesInside(ToolContext context, FileInfo link)
    {
        try
        {
            WorktreePath.Resolve(context, link.FullName, forWrite: false);
            return true;
        }
        catch (ToolException)
        {
            return false;
        }
    }
}
