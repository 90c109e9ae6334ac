using Offload.Workspace;

namespace Offload.Tests.Workspace;

public class SlugTests
{
    [Theory]
    [InlineData("Refactor the auth tests", "refactor-the-auth-tests")]
    [InlineData("  Fix bug #123: crash on START!  ", "fix-bug-123-crash-on-start")]
    [InlineData("refactor the auth tests, run the suite, report any failures", "refactor-the-auth-tests-run")]
    [InlineData("Überprüfe die Logik", "berpr-fe-die-logik")]
    [InlineData("", "task")]
    [InlineData("!!! ??? 日本語", "task")]
    [InlineData("supercalifragilisticexpialidocious-and-more", "supercalifragilisticexpialidoc")]
    public void Slug_MakesShortLowercaseAsciiWordsJoinedByDashes(string title, string expected)
    {
        Assert.Equal(expected, GitWorkspace.Slug(title));
    }

    [Fact]
    public void Slug_NeverExceedsThirtyCharacters()
    {
        Assert.All(
            new[] { new string('a', 100), "one two three four five six seven eight nine ten", "a b c d e f g h i j k l m n o p q r s t" },
            title => Assert.InRange(GitWorkspace.Slug(title).Length, 1, 30));
    }
}
