namespace Offload.Agent.Tools;

/// <summary>
/// Confines the file tools to the task's worktree. A path is resolved the way the kernel would
/// (component by component, following every symlink, <c>..</c> applied after resolution), so a
/// symlink inside the worktree that points outside it, even a dangling one, is refused for
/// reading and writing alike. The missing tail of a path that does not exist yet is kept as is.
/// </summary>
internal static class WorktreePath
{
    private const int MaxSymlinkHops = 40;

    /// <summary>The worktree's real path.</summary>
    public static string Root(ToolContext context) => ResolveReal(Path.GetFullPath(context.WorkDir));

    /// <summary>Resolves <paramref name="path"/> to a real path inside the worktree, or throws <see cref="ToolException"/>.</summary>
    public static string Resolve(ToolContext context, string path, bool forWrite)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ToolException("The path is empty.");
        }
        var root = Root(context);
        var real = ResolveReal(Path.IsPathRooted(path) ? path : Path.Join(Path.GetFullPath(context.WorkDir), path));
        if (!IsInside(root, real))
        {
            var resolvesTo = real == Path.GetFullPath(path, root) ? "" : $" (it resolves to {real})";
            throw new ToolException($"{path} is outside the task's worktree {root}{resolvesTo}. Only files inside the worktree can be used.");
        }
        if (forWrite && IsInsideGitDir(root, real))
        {
            throw new ToolException($"{path} is inside the worktree's .git; it cannot be written. Use git commands through Bash instead.");
        }
        return real;
    }

    /// <summary>How a path is shown to the model: relative to the worktree when inside it.</summary>
    public static string Display(string root, string real) =>
        IsInside(root, real) && real != root ? Path.GetRelativePath(root, real) : real;

    public static bool IsInside(string root, string real) =>
        real == root || real.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal);

    public static bool IsInsideGitDir(string root, string real)
    {
        var relative = Path.GetRelativePath(root, real);
        return relative == ".git" || relative.StartsWith(".git/", StringComparison.Ordinal);
    }

    private static string ResolveReal(string absolutePath)
    {
        var pending = new Stack<string>(absolutePath.Split('/').Reverse());
        var current = "/";
        var hops = 0;
        while (pending.TryPop(out var part))
        {
            if (part is "" or ".")
            {
                continue;
            }
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? "/";
                continue;
            }
            var candidate = Path.Join(current, part);
            var target = LinkTarget(candidate);
            if (target is null)
            {
                current = candidate;
                continue;
            }
            if (++hops > MaxSymlinkHops)
            {
                throw new ToolException($"Too many levels of symbolic links at {candidate}.");
            }
            if (Path.IsPathRooted(target))
            {
                current = "/";
            }
            foreach (var targetPart in target.Split('/').Reverse())
            {
                pending.Push(targetPart);
            }
        }
        return current;
    }

    private static string? LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
