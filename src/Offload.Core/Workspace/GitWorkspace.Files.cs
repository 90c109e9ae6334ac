using System.Collections.Concurrent;

namespace Offload.Workspace;

public sealed partial class GitWorkspace
{
    private static readonly ConcurrentDictionary<string, Task<IReadOnlyDictionary<string, string>?>> FilesAtCommit = new(StringComparer.Ordinal);

    /// <summary>
    /// The text of the named files (paths from the root) as they are in <paramref name="commit"/>, following symlinks
    /// inside the tree; a file that is not there is left out. Null when git cannot say (the repository or the commit is
    /// gone). A commit never changes, so the answer is kept: tasks started together from one commit share one read.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>?> ReadAtCommitAsync(
        string repoRoot, string commit, IReadOnlyList<string> names, CancellationToken cancellationToken = default)
    {
        if (!IsCommitId(commit))
        {
            return await ReadAllAsync(repoRoot, commit, names).WaitAsync(cancellationToken); // a name such as HEAD moves: not kept
        }

        var key = string.Join('\n', [Path.GetFullPath(repoRoot), commit, .. names]);
        if (FilesAtCommit.Count > 64)
        {
            FilesAtCommit.Clear();
        }

        var reading = FilesAtCommit.GetOrAdd(key, _ => ReadAllAsync(repoRoot, commit, names));
        var files = await reading.WaitAsync(cancellationToken);
        if (files is null)
        {
            FilesAtCommit.TryRemove(new KeyValuePair<string, Task<IReadOnlyDictionary<string, string>?>>(key, reading));
        }

        return files;
    }

    private static bool IsCommitId(string name) => name.Length is 40 or 64 && name.All(char.IsAsciiHexDigitLower);

    private static async Task<IReadOnlyDictionary<string, string>?> ReadAllAsync(string repoRoot, string commit, IReadOnlyList<string> names)
    {
        var read = await Task.WhenAll(names.Select(async name => (Name: name, File: await ReadOneAsync(repoRoot, commit, name))));
        if (read.Any(r => !r.File.Answered)
            || (read.Any(r => r.File.Text is null) && await TryResolveCommitAsync(repoRoot, commit, CancellationToken.None) is null))
        {
            return null; // git failed, or "missing" meant the commit itself is gone
        }

        return read.Where(r => r.File.Text is not null).ToDictionary(r => r.Name, r => r.File.Text!, StringComparer.Ordinal);
    }

    /// <summary>The file's text, or null when the commit has no such file; not answered when git failed.</summary>
    private static async Task<(bool Answered, string? Text)> ReadOneAsync(string repoRoot, string commit, string name)
    {
        // --batch answers "<sha> blob <size>\n<content>\n", or "<object> missing" (or "symlink …" for a link leaving the tree).
        GitResult result;
        try
        {
            result = await Git.RunAsync(repoRoot, ["cat-file", "--batch", "--follow-symlinks"], standardInput: $"{commit}:{name}\n");
        }
        catch (WorkspaceException)
        {
            return (false, null);
        }

        if (!result.Ok)
        {
            return (false, null);
        }

        var headerEnd = result.Stdout.IndexOf('\n', StringComparison.Ordinal);
        var fields = (headerEnd < 0 ? result.Stdout : result.Stdout[..headerEnd]).Split(' ');
        return fields.Length == 3 && fields[1] == "blob" ? (true, result.Stdout[(headerEnd + 1)..^1]) : (true, null);
    }
}
