using System.Text;
using System.Text.RegularExpressions;

namespace Offload.Agent.Tools;

/// <summary>
/// A glob as the model writes it: <c>**</c> crosses directories, <c>*</c> and <c>?</c> do not,
/// <c>[abc]</c> and <c>{ts,tsx}</c> as in a shell. Matched against <c>/</c>-separated relative paths.
/// </summary>
internal sealed class GlobPattern
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, GlobPattern> s_made = new(StringComparer.Ordinal);

    private readonly Regex regex;

    public GlobPattern(string glob)
    {
        Text = glob;
        regex = new Regex(ToRegex(glob), RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromSeconds(1));
    }

    public string Text { get; }

    /// <summary>The pattern for <paramref name="glob"/>, made once and kept (an agent asks for the same few globs again and again).</summary>
    public static GlobPattern For(string glob)
    {
        if (s_made.TryGetValue(glob, out var made))
        {
            return made;
        }

        if (s_made.Count >= 512)
        {
            s_made.Clear();
        }

        return s_made.GetOrAdd(glob, static g => new GlobPattern(g));
    }

    public bool HasDirectory => Text.Contains('/');

    public bool IsMatch(string relativePath) => regex.IsMatch(relativePath);

    private static string ToRegex(string glob)
    {
        var pattern = new StringBuilder("^");
        var braces = 0;
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            switch (c)
            {
                case '*' when i + 1 < glob.Length && glob[i + 1] == '*':
                    while (i + 1 < glob.Length && glob[i + 1] == '*')
                    {
                        i++;
                    }
                    if (i + 1 < glob.Length && glob[i + 1] == '/')
                    {
                        i++;
                        pattern.Append("(?:.*/)?");
                    }
                    else
                    {
                        pattern.Append(".*");
                    }
                    break;
                case '*':
                    pattern.Append("[^/]*");
                    break;
                case '?':
                    pattern.Append("[^/]");
                    break;
                case '[' when glob.IndexOf(']', i + 1) is var close and > 0:
                    var set = glob[(i + 1)..close];
                    pattern.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = close;
                    break;
                case '{':
                    braces++;
                    pattern.Append("(?:");
                    break;
                case '}' when braces > 0:
                    braces--;
                    pattern.Append(')');
                    break;
                case ',' when braces > 0:
                    pattern.Append('|');
                    break;
                case '\\' when i + 1 < glob.Length:
                    pattern.Append(Regex.Escape(glob[++i].ToString()));
                    break;
                default:
                    pattern.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        while (braces-- > 0)
        {
            pattern.Append(')');
        }
        return pattern.Append('$').ToString();
    }
}
