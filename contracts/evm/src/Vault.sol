// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {DepositForwarder} from "./DepositForwarder.sol";

/// @notice SimplRefQ's settlement vault on an EVM chain (Ethereum, BNB Chain).
///
/// Deposits (native coin as token address(0), or ERC-20) are credited by the backend from the
/// `Deposited` event to a user id (the backend's account, as bytes32). Balances then live off
/// chain; a withdrawal is paid when the operator submits the user's EIP-712 authorisation, signed
/// by the user's wallet for this chain and this contract, with the user's next nonce and a deadline.
///
/// Escape hatch (IDEX's exit wallet): the operator posts each user's settled balance per token.
/// If the operator stops answering, the user calls `requestExit()`; from then on the operator can
/// only settle for them, and only until EXIT_DELAY has passed; after it the user takes
/// min(settled balance, what the vault holds) once per token with `exit(token)`. Pausing stops
/// deposits, settlements and withdrawals, never exits.
contract Vault is AccessControl, EIP712, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Submits withdrawals and posts settled balances.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice Time the operator has to post a last settlement after a user asks to exit: a week
    /// lets an operator that is merely slow (an outage, a weekend) catch up, while a user's funds
    /// are never held hostage for longer.
    uint256 public constant EXIT_DELAY = 7 days;

    /// @notice The token address that stands for the chain's native coin (ETH, BNB).
    address public constant NATIVE = address(0);

    bytes32 public constant WITHDRAWAL_TYPEHASH = keccak256(
        "Withdrawal(address user,address token,uint256 amount,uint256 nonce,uint256 deadline)"
    );

    struct Withdrawal {
        address user;
        address token;
        uint256 amount;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice The nonce the user's next withdrawal must carry.
    mapping(address user => uint256) public nonces;
    /// @notice The balance the operator last posted, less the withdrawals paid since.
    mapping(address user => mapping(address token => uint256)) public settledBalance;
    /// @notice When the user asked to exit; 0 while they have not.
    mapping(address user => uint256) public exitRequestedAt;
    mapping(address user => mapping(address token => bool)) public exited;

    event Deposited(bytes32 indexed userId, address indexed from, address indexed token, uint256 amount);
    event Withdrawn(address indexed user, address indexed token, uint256 amount, uint256 nonce);
    event Settled(address indexed user, address indexed token, uint256 balance, uint256 nonce);
    event ExitRequested(address indexed user, uint256 availableAt);
    event Exited(address indexed user, address indexed token, uint256 amount);
    event ForwarderDeployed(bytes32 indexed userId, address forwarder);

    error ZeroAmount();
    error Expired(uint256 deadline);
    error SignatureReplayed(address user, uint256 nonce);
    error InvalidNonce(address user, uint256 expected, uint256 given);
    error InvalidSignature();
    error ExitPending(address user);
    error StaleSettlement(address user, uint256 expectedNonce);
    error SettlementClosed(address user);
    error ExitAlreadyRequested(address user);
    error ExitNotRequested(address user);
    error ExitTooEarly(address user, uint256 availableAt);
    error AlreadyExited(address user, address token);
    error NothingToExit(address user, address token);

    constructor(address admin, address operator) EIP712("SimplRefQ Vault", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    // --- deposits ---------------------------------------------------------------------------

    function deposit(bytes32 userId) external payable whenNotPaused nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        emit Deposited(userId, msg.sender, NATIVE, msg.value);
    }

    /// @dev Credits what arrived, not what was asked: a fee-on-transfer token delivers less.
    function depositToken(bytes32 userId, IERC20 token, uint256 amount) external whenNotPaused nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        emit Deposited(userId, msg.sender, address(token), received);
    }

    // --- per-user deposit addresses -----------------------------------------------------------

    /// @notice The user's deposit address, the same before and after its forwarder is deployed.
    function forwarderAddress(bytes32 userId) public view returns (address) {
        bytes32 initCodeHash =
            keccak256(abi.encodePacked(type(DepositForwarder).creationCode, abi.encode(userId)));
        return Create2.computeAddress(userId, initCodeHash);
    }

    function deployForwarder(bytes32 userId) public returns (DepositForwarder forwarder) {
        address predicted = forwarderAddress(userId);
        if (predicted.code.length != 0) return DepositForwarder(payable(predicted));
        forwarder = new DepositForwarder{salt: userId}(userId);
        emit ForwarderDeployed(userId, address(forwarder));
    }

    /// @notice Deploys the user's forwarder if needed and moves its native coin and the given
    /// tokens into the vault, each credited to the user id by a `Deposited` event.
    /// @dev Not nonReentrant: the forwarder calls back into the deposit functions.
    function sweep(bytes32 userId, IERC20[] calldata tokens) external whenNotPaused {
        DepositForwarder forwarder = deployForwarder(userId);
        forwarder.sweepNative();
        for (uint256 i = 0; i < tokens.length; ++i) {
            forwarder.sweepToken(tokens[i]);
        }
    }

    // --- withdrawals ----------------------------------------------------------------------------

    function withdrawalDigest(Withdrawal calldata w) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(WITHDRAWAL_TYPEHASH, w.user, w.token, w.amount, w.nonce, w.deadline))
        );
    }

    /// @notice Pays a withdrawal the user signed. The domain holds the chain id and this contract,
    /// so a signature for another chain or another vault recovers to someone else.
    function withdraw(Withdrawal calldata w, bytes calldata signature)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (block.timestamp > w.deadline) revert Expired(w.deadline);
        uint256 expected = nonces[w.user];
        if (w.nonce < expected) revert SignatureReplayed(w.user, w.nonce);
        if (w.nonce != expected) revert InvalidNonce(w.user, expected, w.nonce);
        if (ECDSA.recover(withdrawalDigest(w), signature) != w.user) revert InvalidSignature();
        if (exitRequestedAt[w.user] != 0) revert ExitPending(w.user);

        nonces[w.user] = expected + 1;
        uint256 settled = settledBalance[w.user][w.token];
        settledBalance[w.user][w.token] = settled > w.amount ? settled - w.amount : 0;
        emit Withdrawn(w.user, w.token, w.amount, w.nonce);
        _pay(w.user, w.token, w.amount);
    }

    // --- escape hatch -------------------------------------------------------------------------

    /// @notice Posts the user's off-chain balance of a token as it stands after their first `nonce`
    /// withdrawals; a post made before a later withdrawal landed is refused as stale.
    function settle(address user, address token, uint256 balance, uint256 nonce)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        if (nonce != nonces[user]) revert StaleSettlement(user, nonces[user]);
        uint256 requestedAt = exitRequestedAt[user];
        if (requestedAt != 0 && block.timestamp >= requestedAt + EXIT_DELAY) {
            revert SettlementClosed(user);
        }
        settledBalance[user][token] = balance;
        emit Settled(user, token, balance, nonce);
    }

    function requestExit() external {
        if (exitRequestedAt[msg.sender] != 0) revert ExitAlreadyRequested(msg.sender);
        exitRequestedAt[msg.sender] = block.timestamp;
        emit ExitRequested(msg.sender, block.timestamp + EXIT_DELAY);
    }

    function exit(address token) external nonReentrant returns (uint256 amount) {
        uint256 requestedAt = exitRequestedAt[msg.sender];
        if (requestedAt == 0) revert ExitNotRequested(msg.sender);
        uint256 availableAt = requestedAt + EXIT_DELAY;
        if (block.timestamp < availableAt) revert ExitTooEarly(msg.sender, availableAt);
        if (exited[msg.sender][token]) revert AlreadyExited(msg.sender, token);

        uint256 settled = settledBalance[msg.sender][token];
        uint256 holding = token == NATIVE ? address(this).balance : IERC20(token).balanceOf(address(this));
        amount = settled < holding ? settled : holding;
        if (amount == 0) revert NothingToExit(msg.sender, token);

        exited[msg.sender][token] = true;
        settledBalance[msg.sender][token] = 0;
        emit Exited(msg.sender, token, amount);
        _pay(msg.sender, token, amount);
    }

    // --- admin --------------------------------------------------------------------------------

    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    function _pay(address to, address token, uint256 amount) private {
        if (token == NATIVE) Address.sendValue(payable(to), amount);
        else IERC20(token).safeTransfer(to, amount);
    }
}
