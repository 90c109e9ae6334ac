namespace Offload.Agent.Tools;

/// <summary>
/// The files under a directory of the worktree, for Glob and Grep. Skips <c>.git</c>, does not
/// descend into symlinked directories (which could lead outside the worktree or into a loop), and
/// leaves out symlinked files that resolve outside the worktree.
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

    public static IEnumerable<FileInfo> Files(ToolContext context, string directory, CancellationToken cancellationToken)
    {
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(directory));
        while (pending.TryPop(out var current))
        {
            cancellationToken.ThrowIfCancellationRequested();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = current.EnumerateFileSystemInfos("*", Options).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var entry in entries)
            {
                if (entry.Name == ".git")
                {
                    continue;
                }
                if (entry is DirectoryInfo subdirectory)
                {
                    if (subdirectory.LinkTarget is null)
                    {
                        pending.Push(subdirectory);
                    }
                }
                else if (entry is FileInfo file && (file.LinkTarget is null || ResolvesInside(context, file)))
                {
                    yield return file;
                }
            }
        }
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
