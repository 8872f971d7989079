package org.peerns.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.security.GeneralSecurityException
import java.security.ProviderException
import java.security.SecureRandom
import java.security.UnrecoverableKeyException
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.peerns.ffi.KeyStore
import org.peerns.ffi.KeyStoreException

/**
 * The core's identity-wrapping key on Android: 32 random bytes sealed with a non-exportable
 * AES-256-GCM key of the AndroidKeyStore (in StrongBox when the device has one). The sealed blob
 * lives in app-private no-backup storage: a copy on another device could not be opened anyway.
 * Called on a library thread; blocking is fine.
 */
class AndroidKeyStore(context: Context, private val alias: String = "org.peerns.identity-wrap") : KeyStore {
    private val file = sealedFile(context)
    private val hasStrongBox =
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
    private val lock = Any()

    override fun load(): ByteArray? = synchronized(lock) {
        if (!file.exists()) return null
        val blob = mapFailures { file.readBytes() }
        if (blob.size != SEALED_SIZE || blob[0] != FORMAT) {
            throw KeyStoreException.Corrupt("sealed key: unknown format (${blob.size} bytes)")
        }
        // A keystore key that is gone, unrecoverable or invalidated, or that no longer opens the
        // sealed key, cannot be got back: the identity key is lost, which reads as no key (the
        // core then reports KeyLost for a profile with an identity, and the app explains it).
        val key = mapFailures {
            try {
                storedKey()
            } catch (e: UnrecoverableKeyException) {
                null
            }
        } ?: return null
        return mapFailures {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            try {
                cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BITS, blob, 1, IV_SIZE))
                cipher.updateAAD(AAD)
                cipher.doFinal(blob, 1 + IV_SIZE, blob.size - 1 - IV_SIZE)
            } catch (e: KeyPermanentlyInvalidatedException) {
                null
            } catch (e: AEADBadTagException) {
                null
            }
        }
    }

    override fun create(): ByteArray = synchronized(lock) {
        if (file.exists()) throw KeyStoreException.AlreadyExists()
        val secret = ByteArray(KEY_SIZE).also { SecureRandom().nextBytes(it) }
        val sealed = mapFailures {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            // No IV passed: the keystore draws a fresh one (randomized encryption is required).
            // A new key: nothing is sealed yet, so an older key under the alias (one that can no
            // longer be recovered, after which the user asked for a new identity) is dropped.
            cipher.init(Cipher.ENCRYPT_MODE, newKey())
            cipher.updateAAD(AAD)
            byteArrayOf(FORMAT) + cipher.iv + cipher.doFinal(secret)
        }
        check(sealed.size == SEALED_SIZE) { "unexpected sealed size ${sealed.size}" }
        mapFailures { writeAtomically(sealed) }
        secret
    }

    private fun storedKey(): SecretKey? {
        val store = java.security.KeyStore.getInstance(PROVIDER).apply { load(null) }
        return store.getKey(alias, null) as SecretKey?
    }

    /** A fresh key under the alias, replacing any there. */
    private fun newKey(): SecretKey {
        java.security.KeyStore.getInstance(PROVIDER).apply { load(null) }.deleteEntry(alias)
        return generateKey()
    }

    private fun generateKey(): SecretKey {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P && hasStrongBox) {
            generateInStrongBox()?.let { return it }
        }
        return generate(spec().build())
    }

    /** A StrongBox key, or null when StrongBox refuses this key (then the TEE holds it). */
    private fun generateInStrongBox(): SecretKey? = try {
        generate(spec().setIsStrongBoxBacked(true).build())
    } catch (e: StrongBoxUnavailableException) {
        null
    } catch (e: ProviderException) {
        // Some StrongBox chips fail this way instead.
        null
    }

    private fun spec() = KeyGenParameterSpec.Builder(
        alias,
        KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
    )
        .setKeySize(256)
        .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
        .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
        .setRandomizedEncryptionRequired(true)

    private fun generate(spec: KeyGenParameterSpec): SecretKey = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER).run {
        init(spec)
        generateKey()
    }

    /** Writes to a temporary file, syncs it, then renames it over [file]. */
    private fun writeAtomically(bytes: ByteArray) {
        val tmp = File(file.path + ".tmp")
        FileOutputStream(tmp).use {
            it.write(bytes)
            it.fd.sync()
        }
        if (!tmp.renameTo(file)) throw IOException("cannot rename $tmp to $file")
    }

    companion object {
        /** Where the sealed key lives: beside the profile, in no-backup storage. */
        fun sealedFile(context: Context) = File(context.noBackupFilesDir, "peerns-identity-key.sealed")

        private const val PROVIDER = "AndroidKeyStore"
        private const val TRANSFORMATION = "AES/GCM/NoPadding"
        private const val FORMAT: Byte = 1
        private const val KEY_SIZE = 32
        private const val IV_SIZE = 12
        private const val TAG_BITS = 128
        private const val SEALED_SIZE = 1 + IV_SIZE + KEY_SIZE + TAG_BITS / 8
        private val AAD = "peerns identity key v1".encodeToByteArray()
    }
}

/** Runs [block]; I/O and keystore failures become [KeyStoreException.Unavailable]. */
private inline fun <T> mapFailures(block: () -> T): T = try {
    block()
} catch (e: IOException) {
    throw KeyStoreException.Unavailable(e.toString())
} catch (e: GeneralSecurityException) {
    throw KeyStoreException.Unavailable(e.toString())
} catch (e: ProviderException) {
    throw KeyStoreException.Unavailable(e.toString())
}
