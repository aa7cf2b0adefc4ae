using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

public sealed class PduCodecTests
{
    // A-ASSOCIATE-RQ from "ECHOSCU" to "ANY-SCP": one presentation context (Verification, Implicit VR LE),
    // user information with maximum length 16384 and implementation class UID "1.2.3".
    private static readonly byte[] AssociateRqFixture =
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0xA4,                   // PDU type 1, reserved, length 0xA4 (164)
        0x00, 0x01, 0x00, 0x00,                               // protocol version 1, reserved
        .."ANY-SCP         "u8, .."ECHOSCU         "u8,       // called AE, calling AE (16 bytes, space padded)
        .. new byte[32],                                      // reserved
        0x10, 0x00, 0x00, 0x15, .."1.2.840.10008.3.1.1.1"u8,  // application context item (21 bytes)
        0x20, 0x00, 0x00, 0x2E, 0x01, 0x00, 0x00, 0x00,       // presentation context item, length 46, ID 1
        0x30, 0x00, 0x00, 0x11, .."1.2.840.10008.1.1"u8,      //   abstract syntax: Verification (17 bytes)
        0x40, 0x00, 0x00, 0x11, .."1.2.840.10008.1.2"u8,      //   transfer syntax: Implicit VR LE (17 bytes)
        0x50, 0x00, 0x00, 0x11,                               // user information item, length 17
        0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00,       //   maximum length 16384
        0x52, 0x00, 0x00, 0x05, .."1.2.3"u8,                  //   implementation class UID
    ];

    [Fact]
    public void Decodes_a_byte_fixture_of_an_A_ASSOCIATE_RQ_and_encodes_it_back_identically()
    {
        Assert.Equal(6 + 164, AssociateRqFixture.Length);
        var rq = Assert.IsType<AAssociateRQ>(PduCodec.Decode(AssociateRqFixture[0], AssociateRqFixture.AsSpan(6)));
        Assert.Equal(("ANY-SCP", "ECHOSCU"), (rq.CalledAE, rq.CallingAE));
        var pc = Assert.Single(rq.PresentationContexts);
        Assert.Equal((1, "1.2.840.10008.1.1"), (pc.Id, pc.AbstractSyntax));
        Assert.Equal(["1.2.840.10008.1.2"], pc.TransferSyntaxes);
        Assert.Equal(16384u, rq.UserInformation.MaxPduLength);
        Assert.Equal("1.2.3", rq.UserInformation.ImplementationClassUid);
        Assert.Equal(AssociateRqFixture, PduCodec.Encode(rq));
    }

    public static TheoryData<UserIdentity> Identities() => new()
    {
        UserIdentity.ForUsername("bob"),
        UserIdentity.ForUsernameAndPasscode("alice", "pässwörd", positiveResponse: true),
        UserIdentity.ForKerberos([0x60, 0x82, 0x01, 0x00, 0xFF]),
        UserIdentity.ForSaml("<saml:Assertion/>"),
        UserIdentity.ForJwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", positiveResponse: true),
    };

    [Theory]
    [MemberData(nameof(Identities))]
    public void A_ASSOCIATE_RQ_with_every_user_information_sub_item_round_trips(UserIdentity identity)
    {
        var rq = new AAssociateRQ("ARCHIVE", "MODALITY", AAssociateRQ.DicomApplicationContext,
        [
            new PresentationContext(1, "1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
            new PresentationContext(3, "1.2.840.10008.5.1.4.1.2.2.3", ["1.2.840.10008.1.2"]),
        ], new UserInformation
        {
            MaxPduLength = 65536,
            ImplementationClassUid = "1.2.3.4",
            ImplementationVersionName = "TEST_1",
            AsyncOperationsWindow = (5, 3),
            RoleSelections = [new RoleSelection("1.2.840.10008.5.1.4.1.1.2", false, true)],
            ExtendedNegotiations = [new SopClassExtendedNegotiation("1.2.840.10008.5.1.4.1.2.2.1", [1, 1, 0])],
            CommonExtendedNegotiations = [new SopClassCommonExtendedNegotiation("1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.4.2", ["1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.33"])],
            UserIdentity = identity,
        });
        var bytes = PduCodec.Encode(rq);
        var back = Assert.IsType<AAssociateRQ>(PduCodec.Decode(bytes[0], bytes.AsSpan(6)));
        Assert.Equal(rq.UserInformation, back.UserInformation);
        Assert.Equal(rq.PresentationContexts.Select(p => (p.Id, p.AbstractSyntax, string.Join(",", p.TransferSyntaxes))),
            back.PresentationContexts.Select(p => (p.Id, p.AbstractSyntax, string.Join(",", p.TransferSyntaxes))));
        Assert.Equal(identity.PrimaryField, back.UserInformation.UserIdentity!.PrimaryField);
        Assert.Equal(PduCodec.Encode(back), bytes);
    }

    [Fact]
    public void A_ASSOCIATE_AC_with_results_roles_and_user_identity_response_round_trips()
    {
        var ac = new AAssociateAC("ARCHIVE", "MODALITY", AAssociateRQ.DicomApplicationContext,
        [
            new PresentationContextResponse(1, PresentationContextResult.Acceptance, "1.2.840.10008.1.2.1"),
            new PresentationContextResponse(3, PresentationContextResult.AbstractSyntaxNotSupported, "1.2.840.10008.1.2"),
            new PresentationContextResponse(5, PresentationContextResult.TransferSyntaxesNotSupported, "1.2.840.10008.1.2"),
        ], new UserInformation
        {
            MaxPduLength = 16384, ImplementationClassUid = "1.2.3", AsyncOperationsWindow = (1, 1),
            RoleSelections = [new RoleSelection("1.2.840.10008.5.1.4.1.1.2", false, true)],
            UserIdentityServerResponse = [1, 2, 3],
        });
        var bytes = PduCodec.Encode(ac);
        var back = Assert.IsType<AAssociateAC>(PduCodec.Decode(bytes[0], bytes.AsSpan(6)));
        Assert.Equal(ac.UserInformation, back.UserInformation);
        Assert.Equal(ac.PresentationContexts, back.PresentationContexts);
    }

    [Fact]
    public void Short_PDUs_round_trip_with_their_exact_wire_bytes()
    {
        Assert.Equal([0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2], PduCodec.Encode(new AAssociateRJ(AssociateRejectResult.RejectedTransient, AssociateRejectSource.ServiceProviderPresentation, AssociateRejectReason.PresentationLocalLimitExceeded)));
        Assert.Equal([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0], PduCodec.Encode(AReleaseRQ.Instance));
        Assert.Equal([0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0], PduCodec.Encode(AReleaseRP.Instance));
        Assert.Equal([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6], PduCodec.Encode(new AAbort(AbortSource.ServiceProvider, AbortReason.InvalidPduParameterValue)));
        // P-DATA-TF with a last command fragment of 3 bytes on context 5: item length 5, PCID 5, header 0b11.
        var pd = PduCodec.Encode(new PDataTF([new Pdv(5, true, true, new byte[] { 9, 8, 7 })]));
        Assert.Equal([0x04, 0, 0, 0, 0, 9, 0, 0, 0, 5, 5, 3, 9, 8, 7], pd);
        var back = Assert.IsType<PDataTF>(PduCodec.Decode(pd[0], pd.AsSpan(6)));
        var pdv = Assert.Single(back.Pdvs);
        Assert.Equal((5, true, true), (pdv.PresentationContextId, pdv.IsCommand, pdv.IsLast));
        foreach (var p in new Pdu.Pdu[] { AReleaseRQ.Instance, new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified) })
        {
            var b = PduCodec.Encode(p);
            Assert.Equal(p, PduCodec.Decode(b[0], b.AsSpan(6)));
        }
    }

    [Fact]
    public void An_item_length_overrunning_the_PDU_is_rejected_naming_the_offset()
    {
        var bad = (byte[])AssociateRqFixture.Clone();
        bad[6 + 68 + 3] = 0xFF; // application context item claims 255 bytes
        var e = Assert.Throws<PduException>(() => PduCodec.Decode(bad[0], bad.AsSpan(6)));
        Assert.Contains("offset 68", e.Message);
        Assert.Contains("255", e.Message);
    }

    [Fact]
    public void A_sub_item_length_under_running_its_item_is_rejected()
    {
        var bad = (byte[])AssociateRqFixture.Clone();
        // The presentation context item claims 46 bytes but its abstract syntax sub-item claims 40, running past it.
        bad[6 + 68 + 25 + 8 + 3] = 40;
        Assert.Throws<PduException>(() => PduCodec.Decode(bad[0], bad.AsSpan(6)));
    }

    [Fact]
    public void Truncated_fixed_fields_are_rejected()
    {
        Assert.Throws<PduException>(() => PduCodec.Decode(0x01, new byte[67]));
        Assert.Throws<PduException>(() => PduCodec.Decode(0x03, new byte[3]));
        Assert.Throws<PduException>(() => PduCodec.Decode(0x07, new byte[5]));
        var e = Assert.Throws<PduException>(() => PduCodec.Decode(0x09, new byte[4]));
        Assert.Equal(AbortReason.UnrecognizedPdu, e.Reason);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 1, 1 })]                 // PDV item length 1 < its 2-byte header
    [InlineData(new byte[] { 0, 0, 0, 9, 1, 3, 0, 0 })]        // PDV claims 9 bytes, 4 remain
    [InlineData(new byte[] { 0, 0, 0 })]                       // truncated item length
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 1, 3 })]  // 4 GB PDV
    public void Malformed_PDV_items_are_rejected(byte[] body)
    {
        Assert.Throws<PduException>(() => PduCodec.Decode(0x04, body));
    }

    [Fact]
    public void Mutated_PDUs_either_decode_or_fail_with_PduException_never_anything_else()
    {
        var rng = new Random(20260101);
        var seeds = new List<byte[]>
        {
            AssociateRqFixture,
            PduCodec.Encode(new AAssociateAC("A", "B", AAssociateRQ.DicomApplicationContext, [new PresentationContextResponse(1, 0, "1.2.840.10008.1.2")],
                new UserInformation { MaxPduLength = 1, RoleSelections = [new RoleSelection("1.2", true, true)], UserIdentityServerResponse = [1] })),
            PduCodec.Encode(new AAssociateRQ("A", "B", AAssociateRQ.DicomApplicationContext, [new PresentationContext(1, "1.2", ["1.2.3"])], new UserInformation
            {
                CommonExtendedNegotiations = [new SopClassCommonExtendedNegotiation("1.2", "1.3", ["1.4"])],
                ExtendedNegotiations = [new SopClassExtendedNegotiation("1.2", [1])], UserIdentity = UserIdentity.ForUsernameAndPasscode("u", "p"),
            })),
            PduCodec.Encode(new PDataTF([new Pdv(1, true, false, new byte[10]), new Pdv(1, true, true, new byte[3])])),
        };
        for (int i = 0; i < 20000; i++)
        {
            var pdu = (byte[])seeds[i % seeds.Count].Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++) pdu[6 + rng.Next(pdu.Length - 6)] = (byte)rng.Next(256);
            int cut = rng.Next(4) == 0 ? rng.Next(6, pdu.Length) : pdu.Length;
            try { PduCodec.Decode(pdu[0], pdu.AsSpan(6, cut - 6)); }
            catch (PduException) { }
        }
    }
}
