import CMPI
import XCTest

@testable import MPI

/// Tests that need no mpirun: what the wrapper knows before MPI starts.
final class MPIUnitTests: XCTestCase {
    func testNotInitializedInTheTestProcess() {
        XCTAssertFalse(MPI.isInitialized)
        XCTAssertFalse(MPI.isFinalized)
        XCTAssertFalse(MPI.isActive)
    }

    func testErrorBeforeInitializeDoesNotCallIntoMPI() {
        // Open MPI 4.1 aborts if MPI_Error_string is called before MPI_Init; the wrapper
        // must describe the code itself then (MPI's own text is checked under mpirun).
        let error = MPIError(code: MPI_ERR_TRUNCATE)
        XCTAssertEqual(error.errorClass, MPI_ERR_TRUNCATE)
        XCTAssertTrue(error.isTruncation)
        XCTAssertTrue(error.message.contains("not initialized"), error.message)
        XCTAssertTrue(error.description.contains("\(MPI_ERR_TRUNCATE)"))
        XCTAssertFalse(MPIError(code: MPI_ERR_RANK).isTruncation)
    }

    func testFinalizeBeforeInitializeThrows() {
        XCTAssertThrowsError(try MPI.finalize()) { error in
            XCTAssertTrue((error as? MPIError)?.message.contains("before") == true)
        }
    }

    func testCountsBeyondIntThrowInsteadOfTrapping() {
        XCTAssertEqual(try mpiCount(5), 5)
        XCTAssertThrowsError(try mpiCount(Int(Int32.max) + 1)) { error in
            XCTAssertEqual((error as? MPIError)?.errorClass, MPI_ERR_COUNT)
        }
    }

    func testThreadLevelsAreOrdered() {
        XCTAssertLessThan(ThreadLevel.single, .funneled)
        XCTAssertLessThan(ThreadLevel.funneled, .serialized)
        XCTAssertLessThan(ThreadLevel.serialized, .multiple)
        for level in ThreadLevel.allCases { XCTAssertEqual(ThreadLevel(mpi: level.mpiValue), level) }
    }

    func testPairTypesHaveTheLayoutOfMPIsCStructs() {
        // MPI's pair types are C structs {value; int}; Swift must lay them out the same.
        XCTAssertEqual(MemoryLayout<DoubleInt>.stride, 16)
        XCTAssertEqual(MemoryLayout<DoubleInt>.offset(of: \.index), 8)
        XCTAssertEqual(MemoryLayout<FloatInt>.stride, 8)
        XCTAssertEqual(MemoryLayout<LongInt>.offset(of: \.index), 8)
        XCTAssertEqual(MemoryLayout<IntInt>.stride, 8)
        XCTAssertEqual(MemoryLayout<ShortInt>.offset(of: \.index), 4)
    }

    func testEveryScalarMapsToADistinctPredefinedHandle() {
        let handles: [MPI_Datatype] = [Int8.mpiDatatype, Int16.mpiDatatype, Int32.mpiDatatype, Int64.mpiDatatype,
                                       UInt8.mpiDatatype, UInt16.mpiDatatype, UInt32.mpiDatatype, UInt64.mpiDatatype,
                                       Float.mpiDatatype, Double.mpiDatatype, Bool.mpiDatatype]
        XCTAssertEqual(Set(handles.map { UInt(bitPattern: $0) }).count, handles.count)
        XCTAssertEqual(Int.mpiDatatype, Int64.mpiDatatype)
        XCTAssertEqual(UInt.mpiDatatype, UInt64.mpiDatatype)
    }

    func testShimExposesPredefinedHandles() {
        XCTAssertNotNil(MPI_COMM_WORLD)
        XCTAssertNotEqual(MPI_COMM_WORLD, MPI_COMM_SELF)
        XCTAssertNotEqual(MPI_SUM, MPI_MAX)
        XCTAssertNil(MPI_STATUS_IGNORE)
        XCTAssertEqual(UInt(bitPattern: MPI_IN_PLACE), 1)
        XCTAssertNotNil(MPI_ERRORS_RETURN)
        XCTAssertNotNil(MPI_DOUBLE_INT)
        XCTAssertNotNil(MPI_REQUEST_NULL)
    }
}
