using Aegis.Archive.Security;

namespace Aegis.Archive.Tests.Security;

public sealed class PasswordTests
{
    [Fact]
    public void Argon2id_hash_verifies_and_rejects_wrong_password()
    {
        var h = PasswordHasher.Default.Hash("correct horse battery staple");
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", h, StringComparison.Ordinal);
        Assert.True(PasswordHasher.Verify("correct horse battery staple", h));
        Assert.False(PasswordHasher.Verify("correct horse battery stapler", h));
        Assert.False(PasswordHasher.Verify("", h));
    }

    [Fact]
    public void Same_password_gets_a_different_salt_each_time()
    {
        var a = PasswordHasher.Default.Hash("correct horse battery staple");
        var b = PasswordHasher.Default.Hash("correct horse battery staple");
        Assert.NotEqual(a, b);
        Assert.NotEqual(a.Split('$')[4], b.Split('$')[4]);
    }

    [Fact]
    public void Pbkdf2_sha512_format_verifies()
    {
        var h = PasswordHasher.HashPbkdf2("correct horse battery staple", 1000);
        Assert.StartsWith("pbkdf2-sha512$1000$", h, StringComparison.Ordinal);
        Assert.True(PasswordHasher.Verify("correct horse battery staple", h));
        Assert.False(PasswordHasher.Verify("Correct horse battery staple", h));
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$AAAA")]
    [InlineData("$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA")]
    [InlineData("$argon2id$v=19$m=19456,t=2,p=1$!!!$???")]
    [InlineData("pbkdf2-sha512$-5$AAAA$BBBB")]
    public void Malformed_or_abusive_hashes_do_not_verify(string encoded)
    {
        Assert.False(PasswordHasher.Verify("anything at all here", encoded));
    }

    [Fact]
    public void Tampered_hash_does_not_verify()
    {
        var h = PasswordHasher.Default.Hash("correct horse battery staple");
        var parts = h.Split('$');
        var hash = parts[5].ToCharArray();
        hash[0] = hash[0] == 'A' ? 'B' : 'A';
        parts[5] = new string(hash);
        Assert.False(PasswordHasher.Verify("correct horse battery staple", string.Join('$', parts)));
    }

    [Theory]
    [InlineData("short1!A", "shorter than 12")]
    [InlineData("password", "shorter")]
    [InlineData("passwordpassword", "repeated")]
    [InlineData("Monkey12345678", "common")]
    [InlineData("Password1234", "common")]     // "password" with trailing digits stripped
    [InlineData("QWERTYUIOP12", "common")]     // case-insensitive
    [InlineData("iloveyou2024!", "common")]
    [InlineData("abababababababab", "repeated")]
    [InlineData("aabbccaabbccabcabc", "distinct")]
    public void Weak_passwords_are_refused(string password, string reasonFragment)
    {
        var reason = PasswordPolicy.Check(password);
        Assert.NotNull(reason);
        Assert.Contains(reasonFragment, reason, StringComparison.OrdinalIgnoreCase);
        Assert.Throws<WeakPasswordException>(() => PasswordPolicy.Enforce(password));
    }

    [Fact]
    public void Password_containing_the_user_name_is_refused()
    {
        Assert.NotNull(PasswordPolicy.Check("alice-Winter-Quartz-9", "alice"));
        Assert.Null(PasswordPolicy.Check("alice-Winter-Quartz-9", "bob"));
    }

    [Theory]
    [InlineData("correct horse battery staple")]
    [InlineData("Tr0ub4dour&3-xylophone")]
    [InlineData("ünïcødé pässwörd ∑")]
    public void Strong_passwords_pass(string password) => Assert.Null(PasswordPolicy.Check(password));

    [Fact]
    public void Common_list_is_the_embedded_ten_thousand()
    {
        Assert.True(PasswordPolicy.IsCommon("123456"));
        Assert.True(PasswordPolicy.IsCommon("trustno1"));
        Assert.True(PasswordPolicy.IsCommon("Dragon99"));
        Assert.False(PasswordPolicy.IsCommon("zq7-vortex-lamp-ribbon"));
    }

    [Fact]
    public void Generated_passwords_are_long_random_and_acceptable()
    {
        var a = AccountStore.GeneratePassword(24);
        var b = AccountStore.GeneratePassword(24);
        Assert.Equal(24, a.Length);
        Assert.NotEqual(a, b);
        Assert.Null(PasswordPolicy.Check(a));
    }
}
