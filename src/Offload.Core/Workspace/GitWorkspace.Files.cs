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
        var read = await Task.WhenAll(names.Select(async name => (Name: name, Text: await ReadOneAsync(repoRoot, commit, name))));
        if (read.Any(r => r.Text is null))
        {
            return null;
        }

        return read.Where(r => r.Text!.Length > 0).ToDictionary(r => r.Name, r => r.Text![1..], StringComparer.Ordinal);
    }

    /// <summary>"" when the file is not there, "+" and its text when it is, null when git failed.</summary>
    private static async Task<string?> ReadOneAsync(string repoRoot, string commit, string name)
    {
        // --batch answers "<sha> blob <size>\n<content>\n", or "<object> missing" (or "symlink …" for a link leaving the tree).
        GitResult result;
        try
        {
            result = await Git.RunAsync(repoRoot, ["cat-file", "--batch", "--follow-symlinks"], standardInput: $"{commit}:{name}\n");
        }
        catch (WorkspaceException)
        {
            return null;
        }

        if (!result.Ok)
        {
            return null;
        }

        var headerEnd = result.Stdout.IndexOf('\n', StringComparison.Ordinal);
        var header = headerEnd < 0 ? result.Stdout : result.Stdout[..headerEnd];
        var fields = header.Split(' ');
        if (fields.Length == 3 && fields[1] == "blob")
        {
            return "+" + result.Stdout[(headerEnd + 1)..^1];
        }

        // The base commit itself missing means git cannot say; a file missing from it is an answer.
        return header.EndsWith(" missing", StringComparison.Ordinal) && await TryResolveCommitAsync(repoRoot, commit, CancellationToken.None) is null
            ? null
            : "";
    }
}
