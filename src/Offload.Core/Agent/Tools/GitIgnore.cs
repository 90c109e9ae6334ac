using System.Text;

namespace Offload.Agent.Tools;

/// <summary>
/// The <c>.gitignore</c> files that apply in one directory of the worktree, as git reads them: a file's rules apply to
/// the paths below its directory; a pattern with a slash (other than at its end) is anchored there, one without matches a
/// name at any depth; a trailing slash matches directories only; <c>!</c> takes a path back; within a file the last
/// matching rule wins, and a deeper file wins over the ones above it. An ignored directory is not entered, so nothing
/// under it can be taken back (as in git). <c>.git/info/exclude</c> and <c>core.excludesFile</c> are not read.
/// </summary>
internal sealed class GitIgnore
{
    private readonly GitIgnore? _parent;
    private readonly string _base; // the directory of this .gitignore, relative to the worktree, "" or ending in '/'
    private readonly Rule[] _rules;

    private GitIgnore(GitIgnore? parent, string @base, Rule[] rules)
    {
        _parent = parent;
        _base = @base;
        _rules = rules;
    }

    /// <summary>
    /// The rules for the directory <paramref name="relativeDir"/> (relative to the worktree, "" or ending in '/'): the
    /// parent's, plus the directory's own <c>.gitignore</c> at <paramref name="file"/> when it has rules.
    /// </summary>
    public static GitIgnore? With(GitIgnore? parent, string relativeDir, string file)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return parent;
        }

        var rules = lines.Select(Rule.Parse).OfType<Rule>().ToArray();
        return rules.Length == 0 ? parent : new GitIgnore(parent, relativeDir, rules);
    }

    /// <summary>Whether git ignores <paramref name="relativePath"/> (relative to the worktree, '/'-separated).</summary>
    public bool IsIgnored(string relativePath, bool isDirectory)
    {
        for (var level = this; level is not null; level = level._parent)
        {
            if (!relativePath.StartsWith(level._base, StringComparison.Ordinal))
            {
                continue;
            }

            var path = relativePath[level._base.Length..];
            var name = path[(path.LastIndexOf('/') + 1)..];
            for (var i = level._rules.Length - 1; i >= 0; i--)
            {
                var rule = level._rules[i];
                if ((!rule.DirectoryOnly || isDirectory) && rule.Pattern.IsMatch(rule.Anchored ? path : name))
                {
                    return !rule.Negated;
                }
            }
        }

        return false;
    }

    private sealed record Rule(GlobPattern Pattern, bool Negated, bool DirectoryOnly, bool Anchored)
    {
        public static Rule? Parse(string line)
        {
            line = line.TrimEnd('\r', ' ', '\t');
            if (line.Length == 0 || line[0] == '#')
            {
                return null;
            }

            var negated = line[0] == '!';
            if (negated || line.StartsWith("\\!", StringComparison.Ordinal) || line.StartsWith("\\#", StringComparison.Ordinal))
            {
                line = line[1..];
            }

            var directoryOnly = line.EndsWith('/');
            line = line.TrimEnd('/');
            if (line.Length == 0)
            {
                return null;
            }

            var anchored = line.Contains('/');
            line = line.TrimStart('/');
            var glob = new StringBuilder(line.Length);
            foreach (var c in line)
            {
                glob.Append(c is '{' or '}' or ',' ? "\\" + c : c); // braces are GlobPattern's, not gitignore's
            }

            return new Rule(new GlobPattern(glob.ToString()), negated, directoryOnly, anchored);
        }
    }
}
