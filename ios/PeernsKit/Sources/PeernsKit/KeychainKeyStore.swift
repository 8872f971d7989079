import Foundation
import Security

/// The core's identity-wrapping key in the Keychain: 32 bytes from `SecRandomCopyBytes`, kept
/// as a generic password that is readable after the first unlock and never leaves this device
/// (no iCloud Keychain, no backup restore to another device). Called on a library thread.
public final class KeychainKeyStore: KeyStore, @unchecked Sendable {
    private let service: String
    private let account: String

    public init(service: String = "org.peerns.identity-wrap", account: String = "identity") {
        self.service = service
        self.account = account
    }

    public func load() throws -> Data? {
        var query = itemQuery
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else {
                throw KeyStoreError.Corrupt(msg: "the keychain item holds no data")
            }
            return data
        case errSecItemNotFound:
            return nil
        default:
            throw unavailable(status)
        }
    }

    public func create() throws -> Data {
        var key = Data(count: 32)
        let random = key.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard random == errSecSuccess else { throw unavailable(random) }
        var item = itemQuery
        item[kSecValueData as String] = key
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(item as CFDictionary, nil)
        switch status {
        case errSecSuccess:
            return key
        case errSecDuplicateItem:
            throw KeyStoreError.AlreadyExists
        default:
            throw unavailable(status)
        }
    }

    private var itemQuery: [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrSynchronizable as String: false,
        ]
    }

    /// errSecInteractionNotAllowed, for one, means the device was not unlocked since boot.
    private func unavailable(_ status: OSStatus) -> KeyStoreError {
        let message = SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
        return KeyStoreError.Unavailable(msg: message)
    }
}
