using System.Text;

namespace Offload.Agent.Permissions;

/// <summary>
/// Splits a Bash command line into the simple commands a rule is matched against:
/// <c>a &amp;&amp; b || c; d | e &amp; f</c> gives six. Quotes and escapes are respected.
/// A command with a substitution (<c>$(…)</c>, backticks, <c>&lt;(…)</c>) cannot be fully known
/// from its text, so an allow rule never covers it; for deny and ask rules the substituted text
/// and the script of <c>bash -c '…'</c> are searched too.
/// </summary>
internal sealed record ShellCommand(IReadOnlyList<string> Parts, bool HasSubstitution)
{
    private static readonly string[] Wrappers = ["env", "command", "exec", "nohup", "time", "builtin", "sudo"];

    public static ShellCommand Parse(string command)
    {
        var (parts, substitution) = Split(command);
        return new ShellCommand(parts.Select(Normalize).Where(p => p.Length > 0).ToList(), substitution);
    }

    /// <summary>Every simple command deny and ask rules look at, nested ones included.</summary>
    public IEnumerable<string> AllParts(int depth = 0)
    {
        foreach (var part in Parts)
        {
            yield return part;
            var bare = Unwrap(part);
            if (bare != part)
            {
                yield return bare;
            }

            if (depth < 3 && InlineScript(bare) is { } script)
            {
                foreach (var inner in Parse(script).AllParts(depth + 1))
                {
                    yield return inner;
                }
            }
        }

        if (HasSubstitution && depth < 3)
        {
            var flat = Parts.Select(p => new string(p.Select(c => c is '(' or ')' or '`' or '$' or '<' or '>' ? ';' : c).ToArray()));
            foreach (var inner in flat.SelectMany(f => Parse(f).Parts))
            {
                yield return inner;
                yield return Unwrap(inner);
            }
        }
    }

    private static (List<string> Parts, bool Substitution) Split(string command)
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        var substitution = false;
        char? quote = null;
        for (var i = 0; i < command.Length; i++)
        {
            var c = command[i];
            var next = i + 1 < command.Length ? command[i + 1] : '\0';
            if (quote == '\'')
            {
                quote = c == '\'' ? null : quote;
                current.Append(c);
                continue;
            }

            if (c == '\\' && i + 1 < command.Length)
            {
                current.Append(c).Append(next);
                i++;
                continue;
            }

            if (c == '`' || (c == '$' && next == '(') || (c is '<' or '>' && next == '('))
            {
                substitution = true;
            }

            if (quote == '"')
            {
                quote = c == '"' ? null : quote;
                current.Append(c);
                continue;
            }

            switch (c)
            {
                case '\'' or '"':
                    quote = c;
                    current.Append(c);
                    break;
                case '&' when next == '&':
                case '|' when next == '|':
                    Cut();
                    i++;
                    break;
                case '&' when next == '>' || (current.Length > 0 && current[^1] is '>' or '<'):
                case '|' when current.Length > 0 && current[^1] == '>':
                    current.Append(c); // 2>&1, &>file, >|file
                    break;
                case ';' or '|' or '&' or '\n' or '\r':
                    Cut();
                    break;
                case '(' or ')' or '{' or '}' when current.ToString().Trim().Length == 0:
                    break; // subshell or group: ( a && b )
                default:
                    current.Append(c);
                    break;
            }
        }

        Cut();
        return (parts, substitution);

        void Cut()
        {
            parts.Add(current.ToString());
            current.Clear();
        }
    }

    private static string Normalize(string part)
    {
        var text = part.Trim();
        while (text.EndsWith(')') || text.EndsWith('}'))
        {
            text = text[..^1].TrimEnd(); // the end of a subshell or group
        }

        return string.Join(' ', text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>The command without leading <c>VAR=value</c> assignments and wrappers such as <c>env</c> or <c>nohup</c>.</summary>
    private static string Unwrap(string part)
    {
        var words = part.Split(' ').ToList();
        while (words.Count > 1 && (IsAssignment(words[0]) || Wrappers.Contains(words[0]) || (words[0].StartsWith('-') && words.Count > 1)))
        {
            words.RemoveAt(0);
        }

        return string.Join(' ', words);

        static bool IsAssignment(string word) =>
            word.IndexOf('=', StringComparison.Ordinal) is var eq and > 0 && word[..eq].All(c => char.IsLetterOrDigit(c) || c == '_');
    }

    private static string? InlineScript(string part)
    {
        foreach (var shell in new[] { "bash -c ", "sh -c ", "zsh -c ", "bash -lc ", "sh -lc " })
        {
            if (part.StartsWith(shell, StringComparison.Ordinal))
            {
                return part[shell.Length..].Trim().Trim('\'', '"');
            }
        }

        return null;
    }
}
