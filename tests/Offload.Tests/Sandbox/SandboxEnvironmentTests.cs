using System.Collections;
using Offload.Agent.Tools;

namespace Offload.Tests.Sandbox;

public sealed class SandboxEnvironmentTests
{
    [Theory]
    [InlineData("PATH", true)]
    [InlineData("HOME", true)]
    [InlineData("LANG", true)]
    [InlineData("LC_ALL", true)]
    [InlineData("TERM", true)]
    [InlineData("USER", true)]
    [InlineData("GIT_AUTHOR_NAME", true)]
    [InlineData("GIT_COMMITTER_EMAIL", true)]
    [InlineData("ANTHROPIC_API_KEY", false)]
    [InlineData("OPENAI_API_KEY", false)]
    [InlineData("GITHUB_TOKEN", false)]
    [InlineData("AWS_SECRET_ACCESS_KEY", false)]
    [InlineData("LC_SECRET", false)]
    [InlineData("LC_MY_KEY", false)]
    [InlineData("OFFLOAD_HOME", false)]
    [InlineData("SSH_AUTH_SOCK", false)]
    [InlineData("XDG_RUNTIME_DIR", false)]
    [InlineData("LD_PRELOAD", false)]
    public void Allows_TheListMinusAnythingNamedLikeASecret(string name, bool allowed)
    {
        Assert.Equal(allowed, SandboxEnvironment.Allows(name));
    }

    [Fact]
    public void ForCommands_KeepsTheAllowedValues_AndPointsTempAndCachesAtThePrivateTmp()
    {
        var source = new Hashtable
        {
            ["PATH"] = "/opt/bin:/usr/bin", ["HOME"] = "/home/u", ["LANG"] = "en_GB.UTF-8",
            ["ANTHROPIC_API_KEY"] = "sk-ant-x", ["TMPDIR"] = "/var/folders/x",
        };

        Assert.Equal(
            new Dictionary<string, string>
            {
                ["PATH"] = "/opt/bin:/usr/bin", ["HOME"] = "/home/u", ["LANG"] = "en_GB.UTF-8",
                ["TMPDIR"] = "/tmp", ["XDG_CACHE_HOME"] = "/tmp/.cache",
            },
            SandboxEnvironment.ForCommands(sandboxed: true, source));
        Assert.Equal(
            new Dictionary<string, string> { ["PATH"] = "/opt/bin:/usr/bin", ["HOME"] = "/home/u", ["LANG"] = "en_GB.UTF-8" },
            SandboxEnvironment.ForCommands(sandboxed: false, source));
    }
}
