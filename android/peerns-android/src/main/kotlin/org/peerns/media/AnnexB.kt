package org.peerns.media

/**
 * H.264 Annex-B byte streams (NAL units each behind a `00 00 01` or `00 00 00 01` start code),
 * the form the core sends and receives video in. Pure Kotlin.
 */
object AnnexB {
    /** NAL unit types used here (ITU-T H.264 table 7-1). */
    const val SPS = 7
    const val PPS = 8

    /** An IDR picture's slice. */
    const val IDR = 5

    private val START = byteArrayOf(0, 0, 0, 1)

    /** The NAL units of [stream], without their start codes. */
    fun nalUnits(stream: ByteArray): List<ByteArray> {
        val starts = ArrayList<IntArray>() // [start code offset, payload offset]
        var i = 0
        while (i + 2 < stream.size) {
            if (stream[i].toInt() == 0 && stream[i + 1].toInt() == 0 && stream[i + 2].toInt() == 1) {
                val codeAt = if (i > 0 && stream[i - 1].toInt() == 0) i - 1 else i
                starts.add(intArrayOf(codeAt, i + 3))
                i += 3
            } else {
                i++
            }
        }
        return starts.mapIndexed { n, s ->
            val end = if (n + 1 < starts.size) starts[n + 1][0] else stream.size
            stream.copyOfRange(s[1], end)
        }
    }

    /** The type of a NAL unit (without start code). */
    fun type(nal: ByteArray): Int = if (nal.isEmpty()) -1 else nal[0].toInt() and 0x1f

    /** [nals] as one Annex-B stream with 4-byte start codes. */
    fun join(nals: List<ByteArray>): ByteArray {
        val out = ByteArray(nals.sumOf { it.size + START.size })
        var at = 0
        for (nal in nals) {
            START.copyInto(out, at)
            nal.copyInto(out, at + START.size)
            at += START.size + nal.size
        }
        return out
    }
}

/**
 * Turns an H.264 encoder's output into the access units the core wants: remembers the SPS/PPS of
 * the codec-config output and puts them in front of every keyframe that lacks them (a late joiner
 * or a decoder after a loss needs them with the IDR). Not thread-safe: one per encoder thread.
 */
class AccessUnitAssembler {
    private var config: List<ByteArray> = emptyList()

    /** Takes the encoder's codec-config output (SPS and PPS, Annex-B). */
    fun codecConfig(data: ByteArray) {
        config = AnnexB.nalUnits(data).filter { AnnexB.type(it) == AnnexB.SPS || AnnexB.type(it) == AnnexB.PPS }
    }

    /**
     * One output buffer of the encoder ([codecConfig]: flagged `BUFFER_FLAG_CODEC_CONFIG`,
     * [keyframe]: `BUFFER_FLAG_KEY_FRAME`): the access unit to send, or null for parameters
     * alone. Some encoders give the first IDR in the codec-config buffer, behind the SPS/PPS:
     * that buffer is a keyframe to send too, or the receiver waits for the next one.
     */
    fun encoderOutput(data: ByteArray, codecConfig: Boolean, keyframe: Boolean): ByteArray? {
        if (!codecConfig) return accessUnit(data, keyframe)
        codecConfig(data)
        return data.takeIf { AnnexB.nalUnits(data).any { AnnexB.type(it) == AnnexB.IDR } }
    }

    /** One Annex-B access unit for the core from an encoded frame ([keyframe]: an IDR). */
    fun accessUnit(data: ByteArray, keyframe: Boolean): ByteArray {
        if (!keyframe || config.isEmpty()) return data
        val nals = AnnexB.nalUnits(data)
        if (nals.any { AnnexB.type(it) == AnnexB.SPS }) return data
        return AnnexB.join(config + nals)
    }
}
