using System.Text.RegularExpressions;
using Offload.Workspace;

namespace Offload.Redaction;

/// <summary>
/// The values in the files <c>.worktreeinclude</c> copies into a task's worktree (a <c>.env</c>, typically): a task needs
/// them to run, and neither the journal nor the model may see them. Each <c>NAME=VALUE</c> line (dotenv style:
/// <c>export</c>, quotes and <c>#</c> comments understood) gives a secret named <c>FILE:NAME</c>. Read from the
/// repository's own copies, which the sandbox cannot write.
/// </summary>
public static partial class WorktreeIncludeSecrets
{
    private const long MaxFileBytes = 1 << 20;

    public static async Task<IReadOnlyList<(string Name, string Value)>> ReadAsync(string repoRoot, CancellationToken cancellationToken = default)
    {
        var secrets = new List<(string, string)>();
        foreach (var relative in await GitWorkspace.WorktreeIncludesAsync(repoRoot, cancellationToken))
        {
            var file = new FileInfo(Path.Combine(repoRoot, relative));
            if (!file.Exists || file.Length > MaxFileBytes)
            {
                continue;
            }

            string[] lines;
            try
            {
                lines = await File.ReadAllLinesAsync(file.FullName, cancellationToken);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            secrets.AddRange(Parse(lines).Select(entry => ($"{relative}:{entry.Name}", entry.Value)));
        }

        return secrets;
    }

    /// <summary>The <c>NAME=VALUE</c> pairs of dotenv-style lines; other lines are skipped.</summary>
    public static IEnumerable<(string Name, string Value)> Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            var match = Assignment().Match(line);
            if (!match.Success)
            {
                continue;
            }

            var value = match.Groups["value"].Value.Trim();
            if (value.Length >= 2 && (value[0] is '"' or '\'') && value.IndexOf(value[0], 1) is var end and > 0)
            {
                value = value[1..end];
            }
            else if (value.IndexOf(" #", StringComparison.Ordinal) is var comment and >= 0)
            {
                value = value[..comment].TrimEnd();
            }

            if (value.Length > 0)
            {
                yield return (match.Groups["name"].Value, value);
            }
        }
    }

    [GeneratedRegex(@"^\s*(?:export\s+)?(?<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*=(?<value>.*)$")]
    private static partial Regex Assignment();
}
